// Package sparkplugb is the Sparkplug B payload (Eclipse Sparkplug 3.0, ISO/IEC 20237) as Go types, generated
// from sparkplug_b.proto by protoc and protoc-gen-go with the Opaque API (accessors and builders, no exported
// fields: decoding allocates one struct per message, none per optional field). The .proto is fieldgate's own,
// written from the specification's payload definition; sparkplug_b.pb.go is generated and committed, and
// TestGeneratedCode fails when it no longer matches what the .proto and the pinned generator give.
//
// The protocols/mqtt package decodes these payloads as a Sparkplug host application; cmd/devsim encodes them as
// a simulated edge node.
package sparkplugb
