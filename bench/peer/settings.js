// Node-RED settings for bench/peer: no editor, no admin API, no telemetry; the flow and its
// credentials (plain, credentialSecret false: a throwaway broker password) sit in the userDir.
module.exports = {
    flowFile: "flows.json",
    credentialSecret: false,
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.PEER_UI_PORT || "0", 10),
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    telemetry: {enabled: false, updateNotification: false},
    diagnostics: {enabled: false, ui: false},
    runtimeState: {enabled: false, ui: false},
    logging: {console: {level: "info", metrics: false, audit: false}},
    functionExternalModules: false,
    exportGlobalContextKeys: false,
};
