package app

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	nethttp "net/http"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/http"
)

// serveStandby answers on the App's listener while the node waits for its
// partitions' leases, so that a load balancer sees a live process that is
// not ready rather than a port that hangs: /healthz 200, everything else 503
// unavailable with why. The returned stop ends it and leaves the listener
// to the real server; connections accepted meanwhile finish their request.
func (a *App) serveStandby(why func() error) (stop func()) {
	tl, ok := a.ln.(*net.TCPListener)
	if !ok {
		return func() {}
	}
	sl := &standbyListener{TCPListener: tl}
	var ln net.Listener = sl
	if a.tlsConfig != nil {
		ln = tls.NewListener(sl, a.tlsConfig)
	}
	srv := &nethttp.Server{Handler: http.Unavailable(why, a.log), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return func() {
		// Wake the Accept in progress; the listener answers it as
		// closed, which ends Serve, without closing the socket.
		sl.stopping.Store(true)
		tl.SetDeadline(time.Now())
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		tl.SetDeadline(time.Time{})
	}
}

// standbyListener lends the App's listener to the standby server: its Close
// keeps the socket open, and once stopping, its Accept reports it closed.
type standbyListener struct {
	*net.TCPListener
	stopping atomic.Bool
}

func (l *standbyListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if err != nil && l.stopping.Load() {
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *standbyListener) Close() error { return nil }

// errStandby is what a standby answers.
func errStandby(holder string) error {
	return &stockd.Error{Code: stockd.CodeUnavailable, Message: "standby: another node (" + holder + ") holds the partitions; this one takes over when its leases end", RetryAfter: time.Second}
}
