package event

import (
	"bytes"
	"strings"
	"testing"
)

// TestLineEnd: lineEnd finds the first CR or LF, as bytes.IndexAny does.
func TestLineEnd(t *testing.T) {
	for _, s := range []string{"", "abc", "a\nb", "a\rb", "a\r\nb", "\n", "\r", "ab\n\r", "ab\r\r\n", "x\ny\rz", strings.Repeat("x", 5000) + "\r"} {
		if got, want := lineEnd([]byte(s)), bytes.IndexAny([]byte(s), "\r\n"); got != want {
			t.Errorf("lineEnd(%.20q) = %d, want %d", s, got, want)
		}
	}
}

// FuzzLineEnd: on any input, lineEnd agrees with bytes.IndexAny.
func FuzzLineEnd(f *testing.F) {
	f.Add([]byte("data: x\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := lineEnd(b), bytes.IndexAny(b, "\r\n"); got != want {
			t.Fatalf("lineEnd(%q) = %d, want %d", b, got, want)
		}
	})
}
