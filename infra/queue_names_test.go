package infra

import (
	"reflect"
	"strings"
	"testing"

	apisetup "github.com/huntaze/message-pipeline/functions/api/setup"
	limitersetup "github.com/huntaze/message-pipeline/functions/ratelimiter/setup"
	replaysetup "github.com/huntaze/message-pipeline/functions/replay/setup"
	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
	"github.com/huntaze/message-pipeline/internal/queues"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// queueURLNames is the one name of each queue URL: the field of every
// settings struct and of queues.URLs, and the variable the stack renders.
var queueURLNames = map[string]string{
	"IntakeQueueURL": "INTAKE_QUEUE_URL", "IntakeDLQURL": "INTAKE_DLQ_URL",
	"WorkflowsQueueURL": "WORKFLOWS_QUEUE_URL", "WorkflowsDLQURL": "WORKFLOWS_DLQ_URL",
}

// queueFields returns field name → env variable of every field of t (and
// of the structs it holds without a tag) that names a queue URL.
func queueFields(t reflect.Type, out map[string]string) {
	for f := range t.Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		switch {
		case key == "" && f.Type.Kind() == reflect.Struct:
			queueFields(f.Type, out)
		case strings.Contains(key, "QUEUE") || strings.Contains(key, "DLQ") || strings.Contains(f.Name, "Queue") || strings.Contains(f.Name, "DLQ"):
			out[f.Name] = key
		}
	}
}

func TestEveryQueueURLHasOneNameInEverySettingsStruct(t *testing.T) {
	// GIVEN every component's settings struct
	for name, typ := range map[string]reflect.Type{
		"api": reflect.TypeFor[apisetup.Settings](), "ratelimiter": reflect.TypeFor[limitersetup.Settings](),
		"replay": reflect.TypeFor[replaysetup.Settings](), "scraper": reflect.TypeFor[scrapersettings.Settings](),
		"rotation": reflect.TypeFor[rotator.Settings](),
	} {
		// WHEN its queue URL fields are listed
		got := map[string]string{}
		queueFields(typ, got)
		// THEN each is one of the four names, with its one variable
		if name != "rotation" && len(got) == 0 {
			t.Errorf("%s settings: no queue URL found; this test no longer sees them", name)
		}
		for field, key := range got {
			if want, ok := queueURLNames[field]; !ok || key != want {
				t.Errorf("%s settings: field %s (env %q); queue URLs are named %v", name, field, key, queueURLNames)
			}
		}
	}
	// AND queues.URLs uses the same field names
	for f := range reflect.TypeFor[queues.URLs]().Fields() {
		if _, ok := queueURLNames[f.Name]; !ok {
			t.Errorf("queues.URLs.%s is not one of %v", f.Name, queueURLNames)
		}
	}
}
