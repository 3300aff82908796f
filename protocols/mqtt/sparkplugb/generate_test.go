package sparkplugb

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "write sparkplug_b.pb.go instead of comparing it")

// TestGeneratedCode generates sparkplug_b.pb.go again from sparkplug_b.proto and fails on any difference: the
// committed file is what the .proto gives, so nobody edits one without the other. protoc is Debian's
// protobuf-compiler (FIELDGATE_TEST_PROTOC names the binary; scripts/testenv.sh installs and sets it);
// protoc-gen-go is built from the google.golang.org/protobuf that go.mod requires (its `tool` line), the same
// module as the runtime the generated code calls. Run with -update to rewrite the file after changing the .proto.
func TestGeneratedCode(t *testing.T) {
	protoc := os.Getenv("FIELDGATE_TEST_PROTOC")
	if protoc == "" {
		t.Skip("FIELDGATE_TEST_PROTOC (path of protoc) is not set")
	}
	dir := t.TempDir()
	plugin := filepath.Join(dir, "protoc-gen-go")
	if out, err := exec.Command("go", "build", "-o", plugin, "google.golang.org/protobuf/cmd/protoc-gen-go").CombinedOutput(); err != nil {
		t.Fatalf("build protoc-gen-go: %v\n%s", err, out)
	}
	cmd := exec.Command(protoc, "--plugin=protoc-gen-go="+plugin, "--go_out="+dir, "--go_opt=paths=source_relative",
		"--go_opt=default_api_level=API_OPAQUE", "sparkplug_b.proto")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "sparkplug_b.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("sparkplug_b.pb.go", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("sparkplug_b.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := range min(len(gl), len(wl)) {
			if !bytes.Equal(gl[i], wl[i]) {
				t.Fatalf("sparkplug_b.pb.go is not what sparkplug_b.proto gives (first difference at line %d):\n"+
					"committed: %s\ngenerated: %s\n"+
					"regenerate with -update (a different protoc version shows in the header: CI uses Debian bookworm's 3.21.12)",
					i+1, wl[i], gl[i])
			}
		}
		t.Fatalf("sparkplug_b.pb.go is not what sparkplug_b.proto gives (%d lines committed, %d generated); regenerate with -update", len(wl), len(gl))
	}
}
