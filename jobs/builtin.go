package jobs

// BuiltinPluginName is the custom plugin every Ferry install has, ACTIVE at
// revision 1, providing Ferry's own connectors.
const BuiltinPluginName = "ferry-builtin"

// BuiltinPluginID is the fixed id part of the built-in plugin's ARN, so its
// ARN is the same on every install with the same region and account.
const BuiltinPluginID = "00000000-0000-0000-0000-000000000001"
