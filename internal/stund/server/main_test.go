package server

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: every
// server closed must have stopped every worker and connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
