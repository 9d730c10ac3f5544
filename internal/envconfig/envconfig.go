// Package envconfig is the one way a component's settings travel: a Go
// struct with `env` tags (github.com/caarlos0/env) is parsed from the
// environment by the component's Load, and the CDK stack turns a value of
// the same struct back into the environment with Environ. A name is written
// once, in the struct tag.
package envconfig

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Parse fills a T from environ and returns every problem, each naming the
// environment variable the operator has to fix (the library names the Go
// field).
func Parse[T any](environ map[string]string) (T, []error) {
	var v T
	err := env.ParseWithOptions(&v, env.Options{Environment: environ})
	if err == nil {
		return v, nil
	}
	return v, namedErrors(err, reflect.TypeFor[T]())
}

func namedErrors(err error, t reflect.Type) []error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []error{err}
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if key := tagOf(t, pe.Name); key != "" {
				out = append(out, fmt.Errorf("%s: %w", key, pe.Err))
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// tagOf finds the variable name of the field called name, in t or in the
// structs it embeds by value.
func tagOf(t reflect.Type, name string) string {
	for f := range t.Fields() {
		if f.Name == name {
			if key, _, _ := strings.Cut(f.Tag.Get("env"), ","); key != "" {
				return key
			}
		}
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			if key := tagOf(f.Type, name); key != "" {
				return key
			}
		}
	}
	return ""
}

// Defaults returns a T holding only its fields' envDefault values.
func Defaults[T any]() T { return defaultsOf(reflect.TypeFor[T]()).Interface().(T) }

func defaultsOf(t reflect.Type) reflect.Value {
	v := reflect.New(t)
	// Only the defaults matter here; missing required fields are the
	// caller's Load's business.
	_ = env.ParseWithOptions(v.Interface(), env.Options{Environment: map[string]string{}})
	return v.Elem()
}

// Environ renders v (a settings struct or a pointer to one) as the
// environment its Parse reads back into an equal value. Fields equal to
// their default are left out, so a template carries only what the stack
// decides; a field without a tag that holds a struct is walked.
//
// Strings pass through untouched, so CDK tokens (queue URLs, ARNs) survive.
func Environ(v any) map[string]string {
	rv := reflect.Indirect(reflect.ValueOf(v))
	out := map[string]string{}
	render(rv, defaultsOf(rv.Type()), out)
	return out
}

func render(v, def reflect.Value, out map[string]string) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		tag := f.Tag.Get("env")
		if tag == "" {
			if f.Type.Kind() == reflect.Struct && f.IsExported() {
				render(v.Field(i), def.Field(i), out)
			}
			continue
		}
		key, _, _ := strings.Cut(tag, ",")
		if key == "" || reflect.DeepEqual(v.Field(i).Interface(), def.Field(i).Interface()) {
			continue
		}
		out[key] = format(v.Field(i))
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func format(v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = format(v.Index(i))
		}
		return strings.Join(parts, ",")
	}
	panic(fmt.Sprintf("envconfig: cannot render a %s", v.Type()))
}

// Process returns the process environment as a map (what main passes to
// Load).
func Process() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// Merge returns a copy of base with extra on top.
func Merge(base, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, extra)
	return out
}

// List renders an environment as KEY=VALUE lines for a child process.
func List(environ map[string]string) []string {
	out := make([]string, 0, len(environ))
	for k, v := range environ {
		out = append(out, k+"="+v)
	}
	return out
}
