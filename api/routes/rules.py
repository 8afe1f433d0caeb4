"""The rules files: everyone reads them; admins replace one, and the running rules engine reloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from api.deps import Admin, Viewer, WorldDep, audit
from api.problems import Unprocessable, validate_with
from api.reload import ReloadOutcome, request_reload
from examwatch.datafile import DataFileError
from examwatch.kinds import KINDS
from examwatch.rulebook.configs import SITE
from examwatch.rulebook.files import RulesFile

router = APIRouter(prefix="/rules", tags=["rules"])
_FILES = (*sorted(KINDS), SITE)
FileName = Annotated[str, Path(pattern=f"^({'|'.join(_FILES)})$",
                               description=f"the rules file: a device kind or {SITE} ({', '.join(_FILES)})")]


class RulesBook(BaseModel):
    files: dict[str, RulesFile] = Field(description="rules file (a device kind, or site) → its rules")


class RulesSaved(BaseModel):
    file: str
    rules: RulesFile
    reload: ReloadOutcome = Field(description="whether the running rules engine took the new rules")


@router.get("", summary="Every rules file")
def get_rules(world: WorldDep, _: Viewer) -> RulesBook:
    """The rules the engine loads, per file (``config/rules/<kind>.yaml``), as they are on disk."""
    return RulesBook(files=world.rules_files())


@router.put("/{file}", summary="Replace one rules file (admin)")
def put_rules(world: WorldDep, request: Request, principal: Admin, file: FileName, body: RulesFile) -> RulesSaved:
    """Check the file as the engine would (each rule fits this file's kind, each name once across
    all files), save it, and ask the running rules engine to reload. Alarm state is kept; the
    answer says whether the engine took the new rules."""
    rules = validate_with(RulesFile, body, {"kind": file})
    try:
        world.replace_rules(file, rules)
    except DataFileError as exc:
        raise Unprocessable("body.rules", str(exc)) from exc
    outcome = request_reload(world.settings, "rules", principal.name)
    audit(request, file=file, rules=[r.name for r in rules.rules], reload=outcome.state)
    return RulesSaved(file=file, rules=rules, reload=outcome)


@router.post("/reload", summary="Ask the rules engine to re-read its files (admin)")
def reload_rules(world: WorldDep, request: Request, principal: Admin) -> ReloadOutcome:
    """For files changed on disk: the engine re-reads them as on SIGHUP; a broken file is refused
    and the running rules stay (``state: refused``, with the reason)."""
    outcome = request_reload(world.settings, "rules", principal.name)
    audit(request, reload=outcome.state)
    return outcome
