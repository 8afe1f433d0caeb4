"""bench/peer: examwatch ingest against a tuned Node-RED flow and the bare relay (issue 16); see __main__."""
