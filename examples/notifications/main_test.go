package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/echosse/echo-sse/internal/browsertest"
)

// The browser test runs in one headless Chromium the package's tests share
// (internal/browsertest).
func TestMain(m *testing.M) { goleak.VerifyTestMain(browsertest.WithBrowser(m)) }
