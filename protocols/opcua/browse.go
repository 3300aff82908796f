package opcua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// BrowseOptions configures Browse, the commissioning command `gateway opcua browse`.
type BrowseOptions struct {
	Endpoint string // required
	// Node to start from, in any node id form. Default i=85 (the Objects folder).
	Node string
	// Depth of the walk below Node. Default 3.
	Depth int
	// Name of the input in the printed snippet. Default "plc".
	Name string
	// Security and Auth as in Config. Security.Mode empty means SignAndEncrypt, which needs
	// Security.ServerFingerprints or ServerCAFile (`gateway opcua trust` shows the certificate and its fingerprint).
	Security Security
	Auth     Auth
	// IncludeServer also lists the server's own nodes (the Server object and namespace 0 variables), which are
	// skipped by default.
	IncludeServer bool
	// Timeout bounds the whole browse. Default 60s.
	Timeout time.Duration
	Log     *slog.Logger
}

// browsedVar is one variable found.
type browsedVar struct {
	id       string
	path     string
	dataType string
}

// Browse connects like the input does, walks the address space below opts.Node (forward hierarchical references,
// objects and variables, to opts.Depth levels, in calls that fit the server's operation limits), reads each
// variable's data type and value rank, and writes a ready-to-use YAML config snippet of the variables to w: one
// list item for the gateway's `opcua:` list, with each node's data type as a comment.
func Browse(ctx context.Context, opts BrowseOptions, w io.Writer) error {
	if opts.Endpoint == "" {
		return errors.New("browse: an endpoint is required")
	}
	if opts.Node == "" {
		opts.Node = "i=85"
	}
	if opts.Depth <= 0 {
		opts.Depth = 3
	}
	if opts.Name == "" {
		opts.Name = "plc"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	cfg := Config{Name: opts.Name, Endpoint: opts.Endpoint, Security: opts.Security, Auth: opts.Auth,
		Groups: []Group{{Name: "browse", Nodes: []Node{{ID: "i=2258"}}}}}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("browse: %w", err)
	}
	cfg = cfg.WithDefaults()
	s := &Source{cfg: cfg, log: opts.Log}
	var ident clientIdentity
	if cfg.Security.Mode != ModeNone {
		var err error
		if ident, err = loadClientIdentity(cfg.Security, cfg.Name, opts.Log); err != nil {
			return fmt.Errorf("browse: %w", err)
		}
		if s.trust, err = loadTrust(cfg.Security); err != nil {
			return fmt.Errorf("browse: %w", err)
		}
	}
	c, ep, _, err := s.connect(ctx, ident)
	if err != nil {
		return fmt.Errorf("browse: %w", err)
	}
	defer c.Close(context.Background())
	limits := s.readLimits(ctx, c)

	start, err := parseNodeID(opts.Node, c.Namespaces())
	if err != nil {
		return fmt.Errorf("browse: %w", err)
	}
	vars, err := walk(ctx, c, start, opts.Depth, limits, opts.IncludeServer)
	if err != nil {
		return fmt.Errorf("browse %s: %w", opts.Node, err)
	}
	if err := readDataTypes(ctx, c, vars, limits); err != nil {
		return fmt.Errorf("browse: read data types: %w", err)
	}
	return writeSnippet(w, opts, ep, vars)
}

type walkItem struct {
	id   *ua.NodeID
	path string
}

func walk(ctx context.Context, c *opcua.Client, start *ua.NodeID, depth int, limits EffectiveLimits, includeServer bool) ([]*browsedVar, error) {
	var vars []*browsedVar
	seen := map[string]bool{start.String(): true}
	level := []walkItem{{id: start}}
	for d := 0; d < depth && len(level) > 0; d++ {
		var next []walkItem
		for lo := 0; lo < len(level); lo += limits.MaxNodesPerBrowse {
			chunk := level[lo:min(lo+limits.MaxNodesPerBrowse, len(level))]
			req := &ua.BrowseRequest{View: &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)}, RequestedMaxReferencesPerNode: 1000}
			for _, it := range chunk {
				req.NodesToBrowse = append(req.NodesToBrowse, &ua.BrowseDescription{
					NodeID: it.id, BrowseDirection: ua.BrowseDirectionForward,
					ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true,
					NodeClassMask: uint32(ua.NodeClassObject | ua.NodeClassVariable), ResultMask: uint32(ua.BrowseResultMaskAll),
				})
			}
			res, err := c.Browse(ctx, req)
			if err != nil {
				return nil, err
			}
			for i, r := range res.Results {
				refs := r.References
				cp := r.ContinuationPoint
				for len(cp) > 0 {
					nr, err := c.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
					if err != nil || len(nr.Results) == 0 {
						break
					}
					refs = append(refs, nr.Results[0].References...)
					cp = nr.Results[0].ContinuationPoint
				}
				for _, ref := range refs {
					nid := ua.NewNodeIDFromExpandedNodeID(ref.NodeID)
					if ref.NodeID.HasServerIndex() || seen[nid.String()] {
						continue
					}
					if !includeServer && nid.Namespace() == 0 && (ref.NodeClass == ua.NodeClassVariable || nid.IntID() == id.Server) {
						continue
					}
					seen[nid.String()] = true
					name := ""
					if ref.BrowseName != nil {
						name = ref.BrowseName.Name
					}
					p := name
					if chunk[i].path != "" {
						p = chunk[i].path + "." + name
					}
					switch ref.NodeClass {
					case ua.NodeClassVariable:
						vars = append(vars, &browsedVar{id: nid.String(), path: p})
					case ua.NodeClassObject:
						next = append(next, walkItem{id: nid, path: p})
					}
				}
			}
		}
		level = next
	}
	return vars, nil
}

// readDataTypes fills each variable's data type: the built-in type of its DataType attribute, else the type of
// the value it holds; "[]" marks an array.
func readDataTypes(ctx context.Context, c *opcua.Client, vars []*browsedVar, limits EffectiveLimits) error {
	for lo := 0; lo < len(vars); lo += max(1, limits.MaxNodesPerRead/2) {
		chunk := vars[lo:min(lo+max(1, limits.MaxNodesPerRead/2), len(vars))]
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
		for _, v := range chunk {
			nid, _ := ua.ParseNodeID(v.id)
			req.NodesToRead = append(req.NodesToRead,
				&ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDDataType, DataEncoding: &ua.QualifiedName{}},
				&ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}})
		}
		res, err := c.Read(ctx, req)
		if err != nil {
			return err
		}
		for i, v := range chunk {
			if 2*i+1 >= len(res.Results) {
				break
			}
			v.dataType = dataTypeName(res.Results[2*i], res.Results[2*i+1])
		}
	}
	return nil
}

// builtinNames are the OPC UA built-in data types by id.
var builtinNames = [...]string{"", "Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
	"Float", "Double", "String", "DateTime", "Guid", "ByteString", "XmlElement", "NodeId", "ExpandedNodeId",
	"StatusCode", "QualifiedName", "LocalizedText", "ExtensionObject", "DataValue", "Variant", "DiagnosticInfo"}

func dataTypeName(dt, val *ua.DataValue) string {
	name := ""
	if dt != nil && dt.Status == ua.StatusOK && dt.Value != nil {
		if n := dt.Value.NodeID(); n != nil && n.Namespace() == 0 && n.IntID() >= 1 && n.IntID() <= 25 {
			name = builtinNames[n.IntID()]
		} else if n != nil {
			name = n.String()
		}
	}
	if val != nil && val.Value != nil && val.Value.Value() != nil {
		if name == "" || strings.Contains(name, "=") {
			if t := int(val.Value.Type()); t > 0 && t < len(builtinNames) {
				name = builtinNames[t]
			}
		}
		if val.Value.Has(0x80) || val.Value.ArrayDimensions() != nil {
			name += "[]"
		}
	}
	if name == "" {
		name = "unknown"
	}
	return name
}

func writeSnippet(w io.Writer, opts BrowseOptions, ep *ua.EndpointDescription, vars []*browsedVar) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# fieldgate opcua browse %s from %s, depth %d: %d variables\n", opts.Endpoint, opts.Node, opts.Depth, len(vars))
	b.WriteString("# Paste under `opcua:` in the gateway config; rename metrics and split groups as you like.\n")
	fmt.Fprintf(&b, "- name: %s\n", strconv.Quote(opts.Name))
	fmt.Fprintf(&b, "  endpoint: %s\n", strconv.Quote(opts.Endpoint))
	b.WriteString("  security:\n")
	fmt.Fprintf(&b, "    mode: %s\n", modeName(ep.SecurityMode))
	if ep.SecurityMode != ua.MessageSecurityModeNone {
		fmt.Fprintf(&b, "    policy: %s\n", policyName(ep.SecurityPolicyURI))
		if len(opts.Security.ServerFingerprints) > 0 {
			fmt.Fprintf(&b, "    server_fingerprints: [%s]\n", strconv.Quote(opts.Security.ServerFingerprints[0]))
		}
		if opts.Security.ServerCAFile != "" {
			fmt.Fprintf(&b, "    server_ca_file: %s\n", strconv.Quote(opts.Security.ServerCAFile))
		}
	}
	if opts.Auth.Method != "" && opts.Auth.Method != AuthAnonymous {
		b.WriteString("  auth:\n")
		fmt.Fprintf(&b, "    method: %s\n", opts.Auth.Method)
		if opts.Auth.Username != "" {
			fmt.Fprintf(&b, "    username: %s\n    password: ${OPCUA_PASSWORD}\n", strconv.Quote(opts.Auth.Username))
		}
	}
	b.WriteString("  groups:\n")
	b.WriteString("    - name: browsed\n      publishing_interval: 1s\n      nodes:\n")
	for _, v := range vars {
		fmt.Fprintf(&b, "        - {id: %s, metric: %s} # %s\n", strconv.Quote(v.id), strconv.Quote(v.path), v.dataType)
	}
	if len(vars) == 0 {
		b.WriteString("        [] # no variables found: try another -node or a larger -depth\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
