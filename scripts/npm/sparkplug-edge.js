#!/usr/bin/env node
// A third-party Sparkplug B edge node: Eclipse Tahu's JavaScript client (npm sparkplug-client 3.2.4, payloads
// by sparkplug-payload 1.0.3), for fieldgate's interoperability test (protocols/mqtt, FIELDGATE_TEST_SPARKPLUG_NPM).
//
//   node sparkplug-edge.js --broker tcp://127.0.0.1:1883 --group G --node N
//
// On connecting it publishes its NBIRTH (every datatype the library encodes, with aliases) and a DBIRTH of device
// "dev1". It then reads commands on stdin, one a line:
//
//   data      NDATA and DDATA by alias only (no names), new values, a historical one
//   unknown   DDATA with an alias no birth defined (a host should ask for a rebirth)
//   ddeath    DDEATH of dev1
//
// and answers an NCMD "Node Control/Rebirth" = true with its births again (same bdSeq, seq from 0). It prints
// one JSON line per event on stdout: {"event":"births"|"data"|"unknown"|"ddeath"|"rebirth"}. Killed, it leaves
// its will (NDEATH, bdSeq 0) to the broker. The values are fixed: protocols/mqtt/sparkplug_npm_test.go expects
// them.
"use strict";

const sparkplug = require("sparkplug-client");
const Long = require("long");
const readline = require("readline");

function arg(name, def) {
    const i = process.argv.indexOf("--" + name);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const TS = 1795608000000; // 2026-11-25T12:00:00Z: every metric's timestamp

function emit(event) {
    process.stdout.write(JSON.stringify({ event }) + "\n");
}

const client = sparkplug.newClient({
    serverUrl: arg("broker", "tcp://127.0.0.1:1883"),
    groupId: arg("group", "plant"),
    edgeNode: arg("node", "edge1"),
    clientId: "sparkplug-edge-" + process.pid,
    username: "",
    password: "",
    version: "spBv1.0",
    keepalive: 5,
});

function m(name, alias, type, value, extra) {
    return Object.assign({ name, alias, type, value, timestamp: TS }, extra || {});
}

function nodeBirth() {
    return {
        timestamp: TS,
        metrics: [
            m("Node Control/Rebirth", undefined, "Boolean", false),
            m("int8", 1, "Int8", -5),
            m("int16", 2, "Int16", -300),
            m("int32", 3, "Int32", -12),
            m("int64", 4, "Int64", -1234567890123),
            m("uint8", 5, "UInt8", 250),
            m("uint16", 6, "UInt16", 65000),
            m("uint32", 7, "UInt32", 4000000000),
            m("uint64", 8, "UInt64", Long.fromString("18446744073709551615", true)),
            m("float", 9, "Float", 21.5),
            m("double", 10, "Double", 1234.5678),
            m("bool", 11, "Boolean", true),
            m("string", 12, "String", "läuft"),
            m("datetime", 13, "DateTime", TS + 123),
            m("text", 14, "Text", "line 1\nline 2"),
            m("uuid", 15, "UUID", "0b2f5a3c-1e4d-4c8e-9a57-3f9d1c2b7e60"),
            m("bytes", 16, "Bytes", Buffer.from([0, 1, 255])),
            m("file", 17, "File", Buffer.from("%PDF")),
            m("recipe", 18, "DataSet", {
                numOfColumns: 3,
                columns: ["step", "temp", "name"],
                types: ["Int32", "Double", "String"],
                rows: [[1, 180.5, "heat"], [-2, 20, "cool"]],
            }),
            m("Motor", undefined, "Template", {
                isDefinition: true,
                metrics: [m("speed", undefined, "Float", 0), m("amps", undefined, "Int16", 0)],
                parameters: [{ name: "rating", type: "String", value: "5kW" }],
            }),
            m("motor1", 19, "Template", {
                isDefinition: false,
                templateRef: "Motor",
                metrics: [m("speed", undefined, "Float", 1450.5), m("amps", undefined, "Int16", -3)],
                parameters: [{ name: "rating", type: "String", value: "7kW" }],
            }),
            m("stale", 20, "Double", 3.5, { properties: { Quality: { type: "Int32", value: 500 } } }),
            m("nothing", 21, "Int32", null),
            m("scratch", 22, "Double", 1, { isTransient: true }),
        ],
    };
}

function deviceBirth() {
    return { timestamp: TS, metrics: [m("temp", 100, "Double", 20.5), m("count", 101, "Int32", -1)] };
}

function births() {
    client.publishNodeBirth(nodeBirth());
    client.publishDeviceBirth("dev1", deviceBirth());
    emit("births");
}

// Data by alias only: the library encodes no name when none is given.
function a(alias, type, value, extra) {
    return Object.assign({ alias, type, value, timestamp: TS + 1000 }, extra || {});
}

function data() {
    client.publishNodeData({
        timestamp: TS + 1000,
        metrics: [
            a(1, "Int8", -128),
            a(3, "Int32", -2147483648),
            a(4, "Int64", -1),
            a(7, "UInt32", 1),
            a(8, "UInt64", Long.fromString("9007199254740993", true)),
            a(9, "Float", -0.25),
            a(11, "Boolean", false),
            a(12, "String", ""),
            a(19, "Template", { isDefinition: false, metrics: [m("speed", undefined, "Float", 1500)] }),
            a(10, "Double", 99.5, { isHistorical: true, timestamp: TS - 3600000 }),
        ],
    });
    client.publishDeviceData("dev1", { timestamp: TS + 1000, metrics: [a(100, "Double", 21), a(101, "Int32", 4294967)] });
    emit("data");
}

client.on("birth", births);
client.on("ncmd", (payload) => {
    for (const metric of payload.metrics || []) {
        if (metric.name === "Node Control/Rebirth" && metric.value === true) {
            emit("rebirth");
            births();
        }
    }
});
client.on("error", (err) => {
    process.stderr.write("sparkplug-edge: " + err + "\n");
    process.exit(1);
});

readline.createInterface({ input: process.stdin }).on("line", (line) => {
    switch (line.trim()) {
        case "data":
            data();
            break;
        case "unknown":
            client.publishDeviceData("dev1", { timestamp: TS + 2000, metrics: [a(999, "Double", 1)] });
            emit("unknown");
            break;
        case "ddeath":
            client.publishDeviceDeath("dev1", { timestamp: TS + 3000 });
            emit("ddeath");
            break;
    }
});
