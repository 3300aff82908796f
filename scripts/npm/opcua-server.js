#!/usr/bin/env node
// A node-opcua server for fieldgate's OPC UA integration tests (protocols/opcua/npm_test.go).
//
//   node opcua-server.js [-port 4840] [-pki DIR] [-auto-accept] [-max-nodes-per-read N]
//                        [-max-monitored-items-per-call N] [-bulk N] [-bulk-change-ms N]
//                        [-enforce-max-nodes-per-read N] [-enforce-max-monitored-items-per-call N] [-ns-shift N]
//
// -max-*: operation limits the server advertises and enforces. -enforce-max-*: limits it enforces
// (BadTooManyOperations) without advertising them, as some PLC firmware does. -ns-shift N registers N decoy
// namespaces (urn:fieldgate:decoy:<i>) first, each with an s=Double of -1, so that "urn:fieldgate:npm" has
// another index than without it: a client that does not resolve nsu= ids again reads the decoys.
//
// Address space, namespace "urn:fieldgate:npm" (ns index printed at start; use nsu= in configs):
//   s=<Type>            one variable per built-in scalar type with a fixed, known value (see VALUES below)
//   s=<Type>Array       arrays of Int32, Double, Boolean, String, UInt16, Float
//   s=Counter           Int64, +1 every 100 ms, source timestamp = now
//   s=Bad               Double 0 with status BadSensorFailure
//   s=Uncertain         Double 1.5 with status UncertainLastUsableValue, source time 2024-03-01T12:30:45.1234567Z
//   s=Stale             Double 42, Good, source time 2024-03-01T12:30:45.1234567Z (a stale timestamp)
//   s=Bulk.<i>          Double i, i < -bulk (default 2000), for operation-limit tests; with -bulk-change-ms N
//                       every Bulk value changes every N ms (i + k*100000 at the k-th change), for benchmarks
// Security: None, and Sign/SignAndEncrypt with Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss
// (Basic256 and Basic128Rsa15 too, for tests of explicit opt-in).
// Users: anonymous; user "operator" password "s3cret"; X509 user certificates trusted through the PKI.
// PKI: -pki DIR (default ./pki-opcua) keeps the server certificate across restarts (so a pinned fingerprint
// stays valid) and its trust lists; -auto-accept trusts every client certificate (otherwise put the client's
// certificate into DIR/trusted/certs). On start it prints one JSON line to stdout:
//   {"ready":true,"endpoint":"opc.tcp://127.0.0.1:PORT","fingerprint":"AB:CD:..","ns":N}
"use strict";
const path = require("path");
const fs = require("fs");
const crypto = require("crypto");
const opcua = require("node-opcua");

function arg(name, def) {
  const i = process.argv.indexOf("-" + name);
  if (i < 0) return def;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith("-") ? true : v;
}

const port = parseInt(arg("port", "4840"), 10);
const pkiDir = path.resolve(arg("pki", "./pki-opcua"));
const autoAccept = !!arg("auto-accept", false);
const maxNodesPerRead = parseInt(arg("max-nodes-per-read", "0"), 10);
const maxItemsPerCall = parseInt(arg("max-monitored-items-per-call", "0"), 10);
const bulk = parseInt(arg("bulk", "2000"), 10);
const bulkChangeMs = parseInt(arg("bulk-change-ms", "0"), 10);
const enforceNodesPerRead = parseInt(arg("enforce-max-nodes-per-read", "0"), 10);
const enforceItemsPerCall = parseInt(arg("enforce-max-monitored-items-per-call", "0"), 10);
const nsShift = parseInt(arg("ns-shift", "0"), 10);

const fixedTime = new Date(Date.UTC(2024, 2, 1, 12, 30, 45, 123));
const fixedTimePico = 456700 * 1000; // 0.4567 ms in picoseconds beyond the millisecond

const DT = opcua.DataType;
const VALUES = [
  ["Boolean", DT.Boolean, true],
  ["SByte", DT.SByte, -128],
  ["Byte", DT.Byte, 255],
  ["Int16", DT.Int16, -32768],
  ["UInt16", DT.UInt16, 65535],
  ["Int32", DT.Int32, -2147483648],
  ["UInt32", DT.UInt32, 4294967295],
  ["Int64", DT.Int64, [0x80000000, 0]], // node-opcua Int64 = [high, low] as uint32 words: -2^63
  ["UInt64", DT.UInt64, [0x7fffffff, 0xffffffff]], // 2^63-1
  ["UInt64Max", DT.UInt64, [0xffffffff, 0xffffffff]],
  ["Float", DT.Float, 3.14159],
  ["Double", DT.Double, 2.718281828459045],
  ["String", DT.String, "héllo, wörld"],
  ["DateTime", DT.DateTime, fixedTime],
  ["Guid", DT.Guid, "72962B91-FA75-4AE6-8D28-B404DC7DAF63"],
  ["ByteString", DT.ByteString, Buffer.from([0, 1, 2, 0xfe, 0xff])],
  ["XmlElement", DT.XmlElement, "<a>1</a>"],
  ["NodeId", DT.NodeId, opcua.coerceNodeId("ns=3;s=x")],
  ["ExpandedNodeId", DT.ExpandedNodeId, opcua.coerceExpandedNodeId("ns=2;i=42")],
  ["StatusCode", DT.StatusCode, opcua.StatusCodes.BadNodeIdUnknown],
  ["QualifiedName", DT.QualifiedName, new opcua.QualifiedName({ namespaceIndex: 2, name: "Q" })],
  ["LocalizedText", DT.LocalizedText, new opcua.LocalizedText({ text: "text" })],
];
const ARRAYS = [
  ["Int32Array", DT.Int32, [1, -2, 3]],
  ["DoubleArray", DT.Double, [0.5, 1.25]],
  ["BooleanArray", DT.Boolean, [true, false]],
  ["StringArray", DT.String, ["a", 'b"c']],
  ["UInt16Array", DT.UInt16, [0, 65535]],
  ["FloatArray", DT.Float, [1.5]],
];

const users = { operator: "s3cret" };

async function main() {
  const serverCertificateManager = new opcua.OPCUACertificateManager({
    rootFolder: path.join(pkiDir, "server"),
    automaticallyAcceptUnknownCertificate: autoAccept,
  });
  const userCertificateManager = new opcua.OPCUACertificateManager({
    rootFolder: path.join(pkiDir, "user"),
    automaticallyAcceptUnknownCertificate: autoAccept,
  });
  await serverCertificateManager.initialize();
  await userCertificateManager.initialize();
  const limits = {};
  if (maxNodesPerRead > 0) limits.maxNodesPerRead = maxNodesPerRead;
  if (maxItemsPerCall > 0) limits.maxMonitoredItemsPerCall = maxItemsPerCall;
  // 0 = no limit and not exposed (node-opcua deletes the property); the limit is set once that is done
  if (enforceNodesPerRead > 0) limits.maxNodesPerRead = 0;
  if (enforceItemsPerCall > 0) limits.maxMonitoredItemsPerCall = 0;
  const P = opcua.SecurityPolicy;
  const M = opcua.MessageSecurityMode;
  const server = new opcua.OPCUAServer({
    port,
    hostname: "127.0.0.1",
    alternateHostname: ["127.0.0.1"],
    serverCertificateManager,
    userCertificateManager,
    securityPolicies: [P.None, P.Basic128Rsa15, P.Basic256, P.Basic256Sha256, P.Aes128_Sha256_RsaOaep, P.Aes256_Sha256_RsaPss],
    securityModes: [M.None, M.Sign, M.SignAndEncrypt],
    allowAnonymous: true,
    userManager: { isValidUser: (u, p) => users[u] !== undefined && users[u] === p },
    serverCapabilities: { operationLimits: limits, maxSessions: 50 },
    buildInfo: { productName: "fieldgate-test", buildNumber: "1" },
  });
  await server.initialize();
  const enforced = server.engine.serverCapabilities.operationLimits;
  if (enforceNodesPerRead > 0) enforced.maxNodesPerRead = enforceNodesPerRead;
  if (enforceItemsPerCall > 0) enforced.maxMonitoredItemsPerCall = enforceItemsPerCall;
  const addressSpace = server.engine.addressSpace;
  for (let i = 0; i < nsShift; i++) {
    const decoy = addressSpace.registerNamespace("urn:fieldgate:decoy:" + i);
    const v = decoy.addVariable({ organizedBy: addressSpace.rootFolder.objects, nodeId: "s=Double", browseName: "Double" + i, dataType: DT.Double });
    v.setValueFromSource(new opcua.Variant({ dataType: DT.Double, value: -1 }));
  }
  const ns = addressSpace.registerNamespace("urn:fieldgate:npm");
  const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Fieldgate" });
  const add = (name, dataType, value, valueRank) => {
    const v = ns.addVariable({
      componentOf: folder,
      nodeId: "s=" + name,
      browseName: name,
      dataType,
      valueRank: valueRank === undefined ? -1 : valueRank,
      minimumSamplingInterval: 50,
    });
    v.setValueFromSource(value);
    return v;
  };
  for (const [name, dt, val] of VALUES) {
    add(name, dt, new opcua.Variant({ dataType: dt, arrayType: opcua.VariantArrayType.Scalar, value: val }));
  }
  for (const [name, dt, val] of ARRAYS) {
    add(name, dt, new opcua.Variant({ dataType: dt, arrayType: opcua.VariantArrayType.Array, value: val }), 1);
  }
  const counter = add("Counter", DT.Int64, new opcua.Variant({ dataType: DT.Int64, arrayType: opcua.VariantArrayType.Scalar, value: [0, 0] }));
  let n = 0;
  setInterval(() => {
    n++;
    counter.setValueFromSource(new opcua.Variant({ dataType: DT.Int64, arrayType: opcua.VariantArrayType.Scalar, value: [0, n] }), opcua.StatusCodes.Good, new Date());
  }, 100);
  add("Bad", DT.Double, new opcua.Variant({ dataType: DT.Double, value: 0 })).setValueFromSource(
    new opcua.Variant({ dataType: DT.Double, value: 0 }), opcua.StatusCodes.BadSensorFailure);
  const unc = add("Uncertain", DT.Double, new opcua.Variant({ dataType: DT.Double, value: 1.5 }));
  unc.setValueFromSource(new opcua.Variant({ dataType: DT.Double, value: 1.5 }), opcua.StatusCodes.UncertainLastUsableValue, fixedTime);
  const stale = add("Stale", DT.Double, new opcua.Variant({ dataType: DT.Double, value: 42 }));
  stale.setValueFromSource(new opcua.Variant({ dataType: DT.Double, value: 42 }), opcua.StatusCodes.Good, fixedTime);
  const bulkVars = [];
  for (let i = 0; i < bulk; i++) {
    bulkVars.push(add("Bulk." + i, DT.Double, new opcua.Variant({ dataType: DT.Double, value: i })));
  }
  if (bulkChangeMs > 0) {
    let k = 0;
    setInterval(() => {
      k++;
      const now = new Date();
      bulkVars.forEach((v, i) => v.setValueFromSource(new opcua.Variant({ dataType: DT.Double, value: i + k * 100000 }), opcua.StatusCodes.Good, now));
    }, bulkChangeMs);
  }
  await server.start();
  const der = server.getCertificate();
  const fp = crypto.createHash("sha256").update(der).digest("hex").toUpperCase().match(/../g).join(":");
  process.stdout.write(JSON.stringify({ ready: true, endpoint: "opc.tcp://127.0.0.1:" + port, fingerprint: fp, ns: ns.index }) + "\n");
  const stop = async () => { await server.shutdown(0); process.exit(0); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error("opcua-server:", err);
  process.exit(1);
});
