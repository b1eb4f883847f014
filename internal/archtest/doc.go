// Package archtest checks that the documentation tells the truth about the
// code: docs/architecture.md's import trees against `go list`, the rules on
// which packages each binary may contain, and every relative link in
// README.md and docs/. It holds tests only.
package archtest
