// Package load is a STUN Binding load generator: it keeps many requests in
// flight against one server over UDP or TCP, validates every response and
// reports the response rate, the loss and the round-trip-time percentiles.
//
// It is built to outrun the server it measures on a single core: UDP
// sockets are connected and batched with recvmmsg/sendmmsg, requests are
// built once (a bare 20-byte Binding request, or one with FINGERPRINT)
// and only their transaction ID and FINGERPRINT change, responses
// are validated in place, and latencies go into a fixed-bucket histogram,
// so nothing is allocated per request.
//
// Two ways to drive the server:
//   - closed loop (the default): every connection keeps Window requests in
//     flight and sends a new one as soon as one is answered, which finds
//     the server's saturation rate;
//   - open loop (WithRate): requests leave at a fixed total rate whatever
//     the server does, which shows latency and loss at a given load.
//
// A closed loop over UDP may also spin (WithSpin, Linux): one thread polls
// every socket without sleeping, so that a server answering one datagram
// at a time does not cost the generator a wake-up per answer.
//
// A request unanswered after the timeout is lost (in a closed loop its
// window slot is reused). At the end the generator stops sending, waits up
// to the timeout for the requests still in flight, and counts those still
// unanswered as lost.
package load
