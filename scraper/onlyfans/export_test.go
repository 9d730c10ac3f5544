package onlyfans

// KillBrowserForTest closes the browser behind the sender's back, as a crash would.
func (s *Sender) KillBrowserForTest() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.session.Browser.Close()
}
