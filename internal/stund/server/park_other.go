//go:build !linux

package server

// parker parks idle TCP connections where the system lets it (Linux);
// elsewhere idle connections wait on their goroutines.
type parker struct{}

// parkLink is what a parked connection carries for its parker.
type parkLink struct{}

func newParker(*Server) *parker { return nil }

func (*parker) park(*tcpConn) bool { return false }

func (*parker) close() {}
