package fieldgate

import "errors"

// SASLConfig is the Kafka authentication shared by the gateway's forwarder and the central service's consumer.
type SASLConfig struct {
	// Mechanism is "" (none), "SCRAM-SHA-256", "SCRAM-SHA-512", or "PLAIN" (refused without TLS: it sends the
	// password in clear).
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
}

// Validate checks the fields; tlsOn says whether the connection is encrypted. Errors are FieldErrors relative to
// the sasl block ("mechanism", "username", "password"), joined.
func (s SASLConfig) Validate(tlsOn bool) error {
	var errs []error
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			return FieldErrorf("mechanism", "username/password are set but no mechanism: choose SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN")
		}
		return nil
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
	case "PLAIN":
		if !tlsOn {
			errs = append(errs, FieldErrorf("mechanism", "PLAIN sends the password in clear: enable tls, or use SCRAM-SHA-256/512"))
		}
	default:
		return FieldErrorf("mechanism", "%q is not one of SCRAM-SHA-256, SCRAM-SHA-512, PLAIN", s.Mechanism)
	}
	if s.Username == "" {
		errs = append(errs, FieldErrorf("username", "required with sasl.mechanism %s", s.Mechanism))
	}
	if s.Password == "" {
		errs = append(errs, FieldErrorf("password", "required with sasl.mechanism %s", s.Mechanism))
	}
	return errors.Join(errs...)
}
