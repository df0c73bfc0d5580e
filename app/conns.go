package app

import (
	"net"
	"strconv"
	"sync"
	"time"
)

// limitConns returns a listener that keeps at most n connections open.
// Beyond that it answers each new connection with a 503 at once and closes
// it, rather than leaving it unaccepted in the kernel's queue, where a
// client would wait without knowing why (a probe holding connections with
// slow bodies made new clients wait 19 s).
func limitConns(l net.Listener, n int) net.Listener {
	return &connLimiter{Listener: l, slots: make(chan struct{}, n)}
}

type connLimiter struct {
	net.Listener
	slots chan struct{}
}

// overloaded is the whole answer to a connection over the cap.
var overloaded = func() []byte {
	body := `{"type":"/problems/overloaded","title":"Overloaded","status":503,"detail":"too many open connections; retry shortly","code":"overloaded"}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			go refuse(c)
		}
	}
}

// refuse answers a connection over the cap without reading its request.
func refuse(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(overloaded)
	c.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
