//go:build reviewfindings

package sourcerules

import (
	"os"
	"strconv"
	"sync"
	"testing"
)

var readCache sync.Map

// mustRead returns the file's bytes (read once).
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	if b, ok := readCache.Load(path); ok {
		return b.([]byte)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readCache.Store(path, b)
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }
