// Package stockd is the domain of an event-sourced inventory and stock-reservation
// service: the commands clients send, the immutable events they produce, the
// deterministic decide/apply core that turns one into the other, the coded error
// type, and the small interfaces (Store, Service) that infrastructure implements.
//
// The package imports no infrastructure and performs no I/O. Every decision is a
// pure function of a partition's State, a Command and the time passed in, which is
// what makes given/when/then tests, replay, time travel and deterministic
// simulation possible. Adapters (the engine, storage backends, HTTP) live in
// subpackages and depend on this one, never the reverse.
package stockd
