package client_test

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
)

func TestValueRoundTrips(t *testing.T) {
	when := time.Date(2026, 11, 25, 1, 2, 3, 456789000, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		in   any
		kind string // the oneof field ValueOf must set
		want any    // what GoValue gives back
	}{
		{nil, "null_value", nil},
		{int(-7), "integer", int64(-7)},
		{int8(-8), "integer", int64(-8)},
		{int16(16), "integer", int64(16)},
		{int32(32), "integer", int64(32)},
		{int64(math.MinInt64), "integer", int64(math.MinInt64)},
		{uint(1), "integer", int64(1)},
		{uint8(8), "integer", int64(8)},
		{uint16(16), "integer", int64(16)},
		{uint32(math.MaxUint32), "integer", int64(math.MaxUint32)},
		{uint64(math.MaxInt64), "integer", int64(math.MaxInt64)},
		{float32(1.5), "real", 1.5},
		{math.Inf(-1), "real", math.Inf(-1)},
		{"héllo", "text", "héllo"},
		{"", "text", ""},
		{"\xff\xfe", "text_bytes", "\xff\xfe"},
		{[]byte{0, 1, 2}, "blob", []byte{0, 1, 2}},
		{[]byte{}, "blob", []byte{}},
		{[]byte(nil), "null_value", nil},
		{true, "integer", int64(1)},
		{false, "integer", int64(0)},
		{when, "text", "2026-11-25 00:02:03.456789+00:00"},
		{client.Real(2), "real", 2.0},
	} {
		v, err := client.ValueOf(tc.in)
		if err != nil {
			t.Fatalf("ValueOf(%#v): %v", tc.in, err)
		}
		// Through the wire format, as a server would see and return it.
		b, err := proto.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		back := &sqlraftv1.Value{}
		if err := proto.Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		if got := back.ProtoReflect().WhichOneof(back.ProtoReflect().Descriptor().Oneofs().ByName("kind")); got == nil || string(got.Name()) != tc.kind {
			t.Errorf("ValueOf(%#v) set %v, want %s", tc.in, got, tc.kind)
		}
		got := client.GoValue(back)
		if gb, ok := got.([]byte); ok {
			if wb, ok := tc.want.([]byte); !ok || !bytes.Equal(gb, wb) {
				t.Errorf("GoValue(ValueOf(%#v)) = %#v, want %#v", tc.in, got, tc.want)
			}
		} else if got != tc.want {
			t.Errorf("GoValue(ValueOf(%#v)) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
	parsed, err := client.ParseTime("2026-11-25 00:02:03.456789+00:00")
	if err != nil || !parsed.Equal(when) {
		t.Fatalf("ParseTime: %v, %v; want %v", parsed, err, when)
	}
	for _, s := range []string{"2026-11-25 00:02:03", "2026-11-25", "2026-11-25T00:02:03Z"} {
		if _, err := client.ParseTime(s); err != nil {
			t.Errorf("ParseTime(%q): %v", s, err)
		}
	}
	if _, err := client.ParseTime("yesterday"); err == nil {
		t.Error("ParseTime(yesterday) did not fail")
	}
}

func TestValueOfRefusesUnsupportedTypes(t *testing.T) {
	for _, in := range []any{struct{}{}, []int{1}, map[string]int{}, new(int), uint64(math.MaxInt64 + 1), complex(1, 2)} {
		_, err := client.ValueOf(in)
		if err == nil {
			t.Errorf("ValueOf(%#v) did not fail", in)
		}
	}
	_, err := client.ValueOf(struct{}{})
	var unsupported *client.UnsupportedTypeError
	if !errors.As(err, &unsupported) {
		t.Fatalf("ValueOf(struct{}{}): %v, want an *UnsupportedTypeError", err)
	}
	if _, err := client.Params(1, "a", struct{}{}); err == nil || err.Error()[:11] != "parameter 3" {
		t.Fatalf("Params: %v, want an error naming parameter 3", err)
	}
	if got := client.GoValue(nil); got != nil {
		t.Fatalf("GoValue(nil) = %#v", got)
	}
}
