// Package metrics writes CloudWatch metrics as embedded metric format (EMF)
// JSON lines. Lambda and the awslogs driver ship stdout to CloudWatch Logs,
// which turns these lines into metrics: no agent, no PutMetricData call.
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"
)

// Namespace of every metric of the system.
const Namespace = "Huntaze/MessagePipeline"

// Unit of a metric value, as CloudWatch names it.
type Unit string

const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
	Percent      Unit = "Percent"
)

// Emitter writes EMF lines to one writer (stdout in production). Safe for
// concurrent use.
type Emitter struct {
	mu         sync.Mutex
	w          io.Writer
	dimensions map[string]string
	now        func() time.Time
}

// New returns an emitter whose metrics carry the given dimensions (e.g.
// Service and Environment).
func New(w io.Writer, dimensions map[string]string, now func() time.Time) *Emitter {
	if now == nil {
		now = time.Now
	}
	return &Emitter{w: w, dimensions: maps.Clone(dimensions), now: now}
}

// With returns an emitter writing to the same place with more dimensions
// (e.g. ErrorClass for one family of failures).
func (e *Emitter) With(dimensions map[string]string) *Emitter {
	d := maps.Clone(e.dimensions)
	maps.Copy(d, dimensions)
	return &Emitter{w: lockedWriter{e}, dimensions: d, now: e.now}
}

// lockedWriter writes through the parent emitter's lock, so lines of
// derived emitters never interleave.
type lockedWriter struct{ parent *Emitter }

func (l lockedWriter) Write(p []byte) (int, error) {
	l.parent.mu.Lock()
	defer l.parent.mu.Unlock()
	return l.parent.w.Write(p)
}

// Set is a group of metric values written as one line.
type Set struct {
	values map[string]float64
	units  map[string]Unit
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{values: map[string]float64{}, units: map[string]Unit{}} }

// Add adds v to the metric name (counters).
func (s *Set) Add(name string, unit Unit, v float64) {
	s.values[name] += v
	s.units[name] = unit
}

// Put sets the metric name to v (gauges, durations).
func (s *Set) Put(name string, unit Unit, v float64) {
	s.values[name] = v
	s.units[name] = unit
}

// Value returns the current value of a metric in the set.
func (s *Set) Value(name string) float64 { return s.values[name] }

// Emit writes the set as one EMF line. An empty set writes nothing.
func (e *Emitter) Emit(s *Set) error {
	if len(s.values) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(s.values))
	defs := make([]map[string]string, len(names))
	line := make(map[string]any, len(names)+len(e.dimensions)+1)
	for i, n := range names {
		defs[i] = map[string]string{"Name": n, "Unit": string(s.units[n])}
		line[n] = s.values[n]
	}
	dims := slices.Sorted(maps.Keys(e.dimensions))
	for _, d := range dims {
		line[d] = e.dimensions[d]
	}
	line["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": [][]string{dims},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(append(b, '\n'))
	return err
}
