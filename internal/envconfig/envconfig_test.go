package envconfig_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/envconfig"
)

type inner struct {
	Addr string `env:"ADDR"`
	TLS  bool   `env:"TLS" envDefault:"true"`
}

type settings struct {
	URL    string        `env:"URL,required,notEmpty"`
	Limit  int           `env:"LIMIT" envDefault:"10"`
	Window time.Duration `env:"WINDOW" envDefault:"60s"`
	Factor float64       `env:"FACTOR" envDefault:"2"`
	Count  uint32        `env:"COUNT" envDefault:"5"`
	Inner  inner
}

func TestEnvironRoundTripsThroughParse(t *testing.T) {
	// GIVEN settings that differ from their defaults in every kind of field
	want := settings{URL: "${Token[TOKEN.1]}", Limit: 0, Window: 1500 * time.Millisecond, Factor: 1.5, Count: 5, Inner: inner{Addr: "h:6380", TLS: false}}
	// WHEN they are rendered and parsed back
	environ := envconfig.Environ(want)
	got, errs := envconfig.Parse[settings](environ)
	// THEN the value is the same, and fields at their default were left out
	if len(errs) > 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v (%v), want %+v from %v", got, errs, want, environ)
	}
	if _, ok := environ["COUNT"]; ok {
		t.Fatalf("a field equal to its default was rendered: %v", environ)
	}
	if environ["LIMIT"] != "0" || environ["TLS"] != "false" {
		t.Fatalf("a zero value below a non-zero default must be rendered: %v", environ)
	}
}

func TestParseNamesTheVariableInEveryError(t *testing.T) {
	_, errs := envconfig.Parse[settings](map[string]string{"LIMIT": "ten", "TLS": "maybe"})
	joined := ""
	for _, e := range errs {
		joined += e.Error() + "\n"
	}
	for _, want := range []string{"URL", "LIMIT:", "TLS:"} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors do not name %s:\n%s", want, joined)
		}
	}
}
