package fieldgate

import (
	"errors"
	"testing"
)

func TestWithField(t *testing.T) {
	inner := errors.Join(FieldErrorf("qos", "must be 0, 1 or 2"), FieldErrorf("[3]", "duplicate"), errors.New("plain"))
	err := WithField("mqtt[0]", WithField("subscriptions", inner))
	want := "mqtt[0].subscriptions.qos: must be 0, 1 or 2\nmqtt[0].subscriptions[3]: duplicate\nmqtt[0].subscriptions: plain"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "mqtt[0].subscriptions.qos" {
		t.Errorf("errors.As found %+v", fe)
	}
	if WithField("x", nil) != nil {
		t.Error("WithField(nil) must be nil")
	}
}

func TestFlatten(t *testing.T) {
	a, b, c := errors.New("a"), FieldErrorf("f", "b"), errors.New("c")
	got := Flatten(errors.Join(a, errors.Join(b, errors.Join(c)), nil))
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Errorf("Flatten of nested joins = %v, want [a f: b c]", got)
	}
	if got := Flatten(a); len(got) != 1 || got[0] != a {
		t.Errorf("Flatten(a) = %v", got)
	}
	if got := Flatten(nil); got != nil {
		t.Errorf("Flatten(nil) = %v", got)
	}
}
