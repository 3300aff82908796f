#!/usr/bin/env node
// Checks SQL statements against CrateDB's own grammar (@cratedb/cratedb-sqlparse, CrateDB's ANTLR grammar
// compiled to JavaScript), for fieldgate's tests (cratedb/crate_grammar_test.go).
//
//   node cratedb-parse.js < statements.json
//
// stdin:  a JSON array of strings, one SQL statement each (no trailing semicolon needed).
// stdout: {"cratedb_version": "6.1.1", "results": [{"accepted": true, "type": "INSERT"},
//          {"accepted": false, "error": "[line 1:0 mismatched input ...]"}, ...]}, one result per statement in
//          input order. A statement is accepted when the grammar parses it as exactly one statement without a
//          syntax error; this checks syntax only, not names, types or semantics.
// Exit status 0 when every statement was checked (accepted or not), 2 on unreadable input.
"use strict";

const { sqlparse, __cratedb_version__ } = require("@cratedb/cratedb-sqlparse");

function check(sql) {
	let parsed;
	try {
		parsed = sqlparse(sql);
	} catch (e) {
		// The parser throws instead of reporting on some inputs, e.g. an empty string.
		return { accepted: false, error: "parser threw: " + (e && e.message ? e.message : String(e)) };
	}
	if (parsed.length !== 1) {
		return { accepted: false, error: `parsed as ${parsed.length} statements, want 1` };
	}
	const stmt = parsed[0];
	if (stmt.exception) {
		return { accepted: false, type: stmt.type, error: stmt.exception.errorMessage };
	}
	return { accepted: true, type: stmt.type };
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
	let stmts;
	try {
		stmts = JSON.parse(input);
	} catch (e) {
		process.stderr.write("cratedb-parse: stdin is not JSON: " + e.message + "\n");
		process.exit(2);
	}
	if (!Array.isArray(stmts) || !stmts.every((s) => typeof s === "string")) {
		process.stderr.write("cratedb-parse: stdin must be a JSON array of strings\n");
		process.exit(2);
	}
	const results = stmts.map(check);
	process.stdout.write(JSON.stringify({ cratedb_version: __cratedb_version__, results }) + "\n");
});
