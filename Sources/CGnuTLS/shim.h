#ifndef GRACE_CGNUTLS_SHIM_H
#define GRACE_CGNUTLS_SHIM_H
/*
 * GnuTLS, the TLS library libmicrohttpd is built with on Debian: random bytes and digests for
 * bearer tokens, and the peer certificate of a mutual-TLS connection.
 */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>

#endif
