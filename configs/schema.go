// Package configs holds fieldgate's example configurations (each loaded by a test) and the JSON Schema of the
// gateway's configuration, gateway.schema.json, which `gateway schema` prints and editors read through the
// examples' yaml-language-server line. cmd/gateway's TestSchema writes the schema from the Go config structs and
// their doc comments, and fails when this file is not what they give.
package configs

import _ "embed"

// GatewaySchema is gateway.schema.json.
//
//go:embed gateway.schema.json
var GatewaySchema []byte
