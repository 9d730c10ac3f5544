package fakesite

import (
	"net"
	"sync"
)

// switchListener is the site's listener that can stop listening (a
// refused connection, as from a host whose service is down) and listen
// again on the same address.
type switchListener struct {
	mu     sync.Mutex
	cond   *sync.Cond
	inner  net.Listener // nil while refusing
	addr   net.Addr
	closed bool
}

func newSwitchListener(l net.Listener) *switchListener {
	s := &switchListener{inner: l, addr: l.Addr()}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *switchListener) setRefusing(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case refuse && s.inner != nil:
		_ = s.inner.Close()
		s.inner = nil
	case !refuse && s.inner == nil && !s.closed:
		l, err := net.Listen("tcp", s.addr.String())
		if err != nil {
			panic("fakesite: listen again on " + s.addr.String() + ": " + err.Error())
		}
		s.inner = l
		s.cond.Broadcast()
	}
}

func (s *switchListener) Accept() (net.Conn, error) {
	for {
		s.mu.Lock()
		for s.inner == nil && !s.closed {
			s.cond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return nil, net.ErrClosed
		}
		l := s.inner
		s.mu.Unlock()
		c, err := l.Accept()
		if err == nil {
			return c, nil
		}
		s.mu.Lock()
		switched := s.inner != l
		s.mu.Unlock()
		if !switched {
			return nil, err
		}
	}
}

func (s *switchListener) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.cond.Broadcast()
	if s.inner != nil {
		return s.inner.Close()
	}
	return nil
}

func (s *switchListener) Addr() net.Addr { return s.addr }
