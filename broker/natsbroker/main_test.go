package natsbroker_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/echosse/echo-sse/internal/natstest"
)

func TestMain(m *testing.M) {
	code := func() int {
		defer natstest.Cleanup()
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
