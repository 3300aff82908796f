package opcua

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// Trust is the commissioning command `gateway opcua trust`: trust on first use, done by a person. It asks the
// server for its endpoints (GetEndpoints needs no session and no trust), and writes to w what the person needs
// to decide: each server certificate (subject, issuer, validity, SHA-256 fingerprint, application URI, key), the
// endpoints offered, the one the gateway would choose, and the config lines that pin the certificate. It trusts
// nothing itself: the fingerprint is to be checked against the server's own display of its certificate first.
func Trust(ctx context.Context, endpoint string, timeout time.Duration, w io.Writer) error {
	if !strings.HasPrefix(endpoint, "opc.tcp://") {
		return fmt.Errorf("%q is not an opc.tcp:// URL", endpoint)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, endpoint, opcua.DialTimeout(timeout), opcua.RequestTimeout(timeout))
	if err != nil {
		return fmt.Errorf("get endpoints of %s: %w", endpoint, err)
	}
	if len(eps) == 0 {
		return fmt.Errorf("%s offers no endpoint", endpoint)
	}
	now := time.Now()
	var certs []*x509.Certificate
	seen := map[[32]byte]bool{}
	for _, ep := range eps {
		if len(ep.ServerCertificate) == 0 {
			continue
		}
		chain, err := x509.ParseCertificates(ep.ServerCertificate)
		if err != nil || len(chain) == 0 {
			return fmt.Errorf("the endpoint %s/%s carries a certificate that does not parse: %v",
				policyName(ep.SecurityPolicyURI), modeName(ep.SecurityMode), err)
		}
		if sum := sha256.Sum256(chain[0].Raw); !seen[sum] {
			seen[sum] = true
			certs = append(certs, chain[0])
		}
	}

	fmt.Fprintf(w, "Server %s\n", endpoint)
	for _, c := range certs {
		fmt.Fprintf(w, "\nCertificate\n")
		fmt.Fprintf(w, "  subject      %s\n", c.Subject)
		if c.Issuer.String() == c.Subject.String() {
			fmt.Fprintf(w, "  issuer       self-signed\n")
		} else {
			fmt.Fprintf(w, "  issuer       %s\n", c.Issuer)
		}
		validity := ""
		switch {
		case now.After(c.NotAfter):
			validity = "  EXPIRED"
		case now.Before(c.NotBefore):
			validity = "  NOT YET VALID"
		}
		fmt.Fprintf(w, "  valid        %s to %s%s\n", c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly), validity)
		for _, u := range c.URIs {
			fmt.Fprintf(w, "  application  %s\n", u)
		}
		if names := append(append([]string{}, c.DNSNames...), ipStrings(c)...); len(names) > 0 {
			fmt.Fprintf(w, "  hosts        %s\n", strings.Join(names, ", "))
		}
		key := c.PublicKeyAlgorithm.String()
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
			key = fmt.Sprintf("RSA %d bits", k.N.BitLen())
		}
		fmt.Fprintf(w, "  key          %s, signed with %s%s\n", key, c.SignatureAlgorithm, weakSignature(c))
		fmt.Fprintf(w, "  SHA-256      %s\n", Fingerprint(c.Raw))
	}

	fmt.Fprintf(w, "\nEndpoints offered\n")
	chosen, chooseErr := selectEndpoint(eps, Security{Mode: ModeSignAndEncrypt})
	for _, ep := range eps {
		var tokens []string
		for _, t := range ep.UserIdentityTokens {
			tokens = append(tokens, strings.ToLower(strings.TrimPrefix(t.TokenType.String(), "UserTokenType")))
		}
		mark := ""
		switch {
		case ep == chosen:
			mark = "   <- the gateway's default"
		case ep.SecurityMode == ua.MessageSecurityModeNone:
			mark = "   (no protection)"
		case oneOf(policyName(ep.SecurityPolicyURI), PolicyBasic128Rsa15, PolicyBasic256):
			mark = "   (deprecated: SHA-1)"
		}
		fmt.Fprintf(w, "  %-38s users: %-28s level %d%s\n", policyName(ep.SecurityPolicyURI)+"/"+modeName(ep.SecurityMode),
			strings.Join(tokens, ", "), ep.SecurityLevel, mark)
	}
	if chooseErr != nil {
		fmt.Fprintf(w, "  The gateway's default (SignAndEncrypt with Aes256_Sha256_RsaPss, Aes128_Sha256_RsaOaep or Basic256Sha256)\n"+
			"  is not offered: set security.mode and security.policy to one of the above.\n")
	}

	if len(certs) == 0 {
		fmt.Fprintf(w, "\nThe server offers no certificate: only security mode None, which protects nothing. To use it anyway:\n"+
			"    security:\n      mode: None\n")
		return nil
	}
	fmt.Fprintf(w, "\nCheck the fingerprint against the server's own display of its certificate (its certificate store or\n"+
		"configuration page; not a copy that came over the network), then pin it in the input's config:\n"+
		"    security:\n      server_fingerprints:\n")
	for _, c := range certs {
		fmt.Fprintf(w, "        - %q   # %s, until %s\n", Fingerprint(c.Raw), c.Subject.CommonName, c.NotAfter.UTC().Format(time.DateOnly))
	}
	for _, c := range certs {
		if c.Issuer.String() != c.Subject.String() {
			fmt.Fprintf(w, "or, to trust every certificate the plant CA %q signs, put that CA's certificate in a file and set:\n"+
				"      server_ca_file: /etc/fieldgate/opcua/plant-ca.pem\n", c.Issuer.CommonName)
			break
		}
	}
	return nil
}

func ipStrings(c *x509.Certificate) []string {
	var out []string
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

func weakSignature(c *x509.Certificate) string {
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.MD5WithRSA, x509.MD2WithRSA:
		return " (weak: the Basic256Sha256 and Aes policies refuse it)"
	}
	return ""
}
