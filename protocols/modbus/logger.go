package modbus

import (
	"io"
	"log"
)

// quietLogger swallows the library's own log lines (it prints to stdout by default); this package logs what
// matters itself, with the device and address.
var quietLogger = log.New(io.Discard, "", 0)
