// Package logctx carries log attributes in a context, so that every line a
// request or a message causes names it (correlation_id) without each call
// site repeating it: With adds attributes to a context, and a logger
// wrapped by Logger adds them to every record logged with that context
// (InfoContext, Log(ctx, ...)).
package logctx

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

type key struct{}

// With returns ctx carrying the attributes args (key-value pairs or
// slog.Attr, as slog.Logger.With takes them) on top of those it has.
func With(ctx context.Context, args ...any) context.Context {
	r := slog.NewRecord(time.Time{}, 0, "", 0) // only collects the attributes
	r.Add(args...)
	attrs := slices.Clone(from(ctx))
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	return context.WithValue(ctx, key{}, attrs)
}

func from(ctx context.Context) []slog.Attr {
	if ctx == nil {
		return nil
	}
	attrs, _ := ctx.Value(key{}).([]slog.Attr)
	return attrs
}

// Logger returns l adding the context's attributes to each record; l
// itself if it does already.
func Logger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(handler); ok {
		return l
	}
	return slog.New(handler{next: l.Handler()})
}

type handler struct{ next slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if attrs := from(ctx); len(attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.next.Handle(ctx, r)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return handler{next: h.next.WithAttrs(attrs)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{next: h.next.WithGroup(name)} }
