#!/usr/bin/env node
// A third-party Modbus TCP server (modbus-serial's ServerTCP) serving a fixed register image, for fieldgate's
// integration tests (protocols/modbus, FIELDGATE_TEST_MODBUS_NPM) and demos.
//
//   node modbus-server.js [--port 5020] [--host 127.0.0.1] [--max-registers N] [--limit-exception 3]
//                         [--slow MS] [--unit ID]
//
//   --port             TCP port (default 5020)
//   --max-registers    answer register reads longer than N with an exception, like a device with a lower
//                      limit than the protocol's 125 (default: no limit)
//   --limit-exception  the exception code for that: 3 illegal data value (default) or 2 illegal data address
//   --slow             delay every register reply by MS milliseconds
//   --unit             answer only this unit id (default: every unit id)
//
// Prints "listening HOST:PORT" on stdout when ready. Stops on SIGTERM or SIGINT.
//
// The image, the same for every unit (protocols/modbus/fixture_test.go builds the same one in Go):
//
//   holding 100 + 16*t + 4*o  the value of type t in byte order o, encoded here with Node's Buffer writers
//                             t: 0 int16 -12345, 1 uint16 54321, 2 int32 -123456789, 3 uint32 3000000000,
//                                4 int64 -1234567890123456789, 5 uint64 9007199254740993,
//                                6 float32 3.14159, 7 float64 1234.5678
//                             o: 0 ABCD (big endian), 1 DCBA (little endian), 2 BADC (bytes swapped in each
//                                register), 3 CDAB (registers in reverse order, high byte first)
//   holding 300..307          "fieldgate-plc", 2 bytes a register, high byte first, NUL padded
//   holding 310..317          "fieldgate-plc", low byte first
//   holding 320               0xA5A5
//   input 0                   uint16 777
//   input 1..2                float32 21.5 ABCD
//   input 3                   uint16 777
//   coil i (0..15)            i % 3 == 0
//   discrete input i (0..15)  i % 2 == 1
//   everything else           0
"use strict";

const ModbusRTU = require("modbus-serial");

function arg(name, def) {
    const i = process.argv.indexOf("--" + name);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const host = arg("host", "127.0.0.1");
const port = parseInt(arg("port", "5020"), 10);
const maxRegisters = parseInt(arg("max-registers", "0"), 10);
const limitException = parseInt(arg("limit-exception", "3"), 10);
const slow = parseInt(arg("slow", "0"), 10);
const onlyUnit = arg("unit", "");

const holding = new Uint16Array(65536);
const input = new Uint16Array(65536);

// words returns the registers of a big-endian byte buffer laid out in byte order o.
function words(be, o) {
    const w = [];
    for (let i = 0; i < be.length; i += 2) {
        w.push([be[i], be[i + 1]]);
    }
    if (o === 1 || o === 3) { // DCBA, CDAB: registers in reverse order
        w.reverse();
    }
    return w.map(([hi, lo]) => (o === 1 || o === 2) ? (lo << 8 | hi) : (hi << 8 | lo));
}

const encoders = [
    (b) => { const x = Buffer.alloc(2); x.writeInt16BE(-12345); return x; },
    (b) => { const x = Buffer.alloc(2); x.writeUInt16BE(54321); return x; },
    (b) => { const x = Buffer.alloc(4); x.writeInt32BE(-123456789); return x; },
    (b) => { const x = Buffer.alloc(4); x.writeUInt32BE(3000000000); return x; },
    (b) => { const x = Buffer.alloc(8); x.writeBigInt64BE(-1234567890123456789n); return x; },
    (b) => { const x = Buffer.alloc(8); x.writeBigUInt64BE(9007199254740993n); return x; },
    (b) => { const x = Buffer.alloc(4); x.writeFloatBE(3.14159); return x; },
    (b) => { const x = Buffer.alloc(8); x.writeDoubleBE(1234.5678); return x; },
];
encoders.forEach((enc, t) => {
    for (let o = 0; o < 4; o++) {
        words(enc(), o).forEach((w, i) => { holding[100 + 16 * t + 4 * o + i] = w; });
    }
});
const name = Buffer.alloc(16);
name.write("fieldgate-plc", "latin1");
for (let i = 0; i < 8; i++) {
    holding[300 + i] = name[2 * i] << 8 | name[2 * i + 1];
    holding[310 + i] = name[2 * i + 1] << 8 | name[2 * i];
}
holding[320] = 0xA5A5;
input[0] = 777;
{
    const f = Buffer.alloc(4);
    f.writeFloatBE(21.5);
    input[1] = f.readUInt16BE(0);
    input[2] = f.readUInt16BE(2);
}
input[3] = 777;

function reply(unitID, addr, length, table, callback) {
    if (onlyUnit !== "" && unitID !== parseInt(onlyUnit, 10)) {
        return; // another unit: never answer, like a dead device behind a gateway
    }
    if (maxRegisters > 0 && length > maxRegisters) {
        callback({ modbusErrorCode: limitException, msg: "more than " + maxRegisters + " registers" });
        return;
    }
    const values = Array.from(table.subarray(addr, addr + length));
    if (slow > 0) {
        setTimeout(() => callback(null, values), slow);
    } else {
        callback(null, values);
    }
}

const vector = {
    getMultipleHoldingRegisters: (addr, length, unitID, callback) => reply(unitID, addr, length, holding, callback),
    getHoldingRegister: (addr, unitID, callback) => reply(unitID, addr, 1, holding, (err, v) => callback(err, v && v[0])),
    getMultipleInputRegisters: (addr, length, unitID, callback) => reply(unitID, addr, length, input, callback),
    getInputRegister: (addr, unitID, callback) => reply(unitID, addr, 1, input, (err, v) => callback(err, v && v[0])),
    getCoil: (addr, unitID, callback) => callback(null, addr < 16 && addr % 3 === 0),
    getDiscreteInput: (addr, unitID, callback) => callback(null, addr < 16 && addr % 2 === 1),
    setRegister: (addr, value, unitID, callback) => { holding[addr] = value; callback(null); },
    setCoil: (addr, value, unitID, callback) => callback(null),
};

const server = new ModbusRTU.ServerTCP(vector, { host: host, port: port, unitID: 255 });
server.on("initialized", () => console.log("listening " + host + ":" + port));
server.on("socketError", (err) => console.error("socket error: " + err));
server.on("serverError", (err) => console.error("server error: " + err));
function stop() { server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 500).unref(); }
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
