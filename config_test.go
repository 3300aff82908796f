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
