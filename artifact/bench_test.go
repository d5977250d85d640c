package artifact

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkWriteBundle bundles and digests one 100 MB random (incompressible) file.
func BenchmarkWriteBundle(b *testing.B) {
	src := filepath.Join(b.TempDir(), "random")
	data := make([]byte, 100<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	files := []File{{Path: "bin/random", Source: src, Mode: 0o755}}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := WriteBundle(io.Discard, files); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteBundleELF bundles a real ELF binary (the go command) and reports the ratio.
func BenchmarkWriteBundleELF(b *testing.B) {
	src := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if os.Getenv("GOROOT") == "" {
		src = "/usr/local/go/bin/go"
	}
	fi, err := os.Stat(src)
	if err != nil {
		b.Skip(err)
	}
	files := []File{{Path: "bin/go", Source: src, Mode: 0o755}}
	b.SetBytes(fi.Size())
	var size int64
	for b.Loop() {
		if _, size, err = WriteBundle(io.Discard, files); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/float64(fi.Size()), "ratio")
}
