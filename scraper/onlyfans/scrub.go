package onlyfans

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a credential in a capture.
const redacted = "[redacted]"

// credentialHeaders are the headers whose values are credentials in any
// site's requests (a site profile's session cookie travels in cookie).
var credentialHeaders = regexp.MustCompile(`(?i)("name"\s*:\s*"(?:cookie|set-cookie|authorization|proxy-authorization|x-bc|x-csrf-token|sign)"\s*,\s*"value"\s*:\s*)"(?:[^"\\]|\\.)*"`)

// credentialLogLines are the same headers as Playwright's API-request logs
// print them ("  cookie: sess=...").
var credentialLogLines = regexp.MustCompile(`(?i)\b(cookie|set-cookie|authorization|proxy-authorization|x-bc|x-csrf-token|sign): [^"\\\n]*`)

// scrubArtifacts removes the session from a failure's captures before they
// leave the sender: the trace keeps its DOM snapshots and actions but loses
// its network log (every request's headers, the session cookie among
// them), credential headers anywhere else, and every copy of the session
// value (raw, JSON- and URL-escaped); the page HTML loses the value too. A
// trace that cannot be rewritten is dropped, never kept as it is.
func scrubArtifacts(art *Artifacts, secret string) *Artifacts {
	if art == nil {
		return nil
	}
	secrets := secretForms(secret)
	art.HTML = string(redact([]byte(art.HTML), secrets))
	if len(art.Trace) > 0 {
		tr, err := scrubTrace(art.Trace, secrets)
		if err != nil {
			tr = nil
		}
		art.Trace = tr
	}
	return art
}

func secretForms(secret string) [][]byte {
	if secret == "" {
		return nil
	}
	j, _ := json.Marshal(secret)
	forms := map[string]bool{secret: true, strings.Trim(string(j), `"`): true, url.QueryEscape(secret): true, url.PathEscape(secret): true}
	var out [][]byte
	for f := range forms {
		out = append(out, []byte(f))
	}
	return out
}

func redact(b []byte, secrets [][]byte) []byte {
	b = credentialHeaders.ReplaceAll(b, []byte(`$1"`+redacted+`"`))
	b = credentialLogLines.ReplaceAll(b, []byte(`$1: `+redacted))
	for _, s := range secrets {
		b = bytes.ReplaceAll(b, s, []byte(redacted))
	}
	return b
}

// scrubTrace rewrites a Playwright trace zip without its network files and
// with every other file redacted.
func scrubTrace(trace []byte, secrets [][]byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(trace), int64(len(trace)))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".network") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			return nil, err
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(redact(b, secrets)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
