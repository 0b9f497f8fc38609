#ifndef GRACE_CGNUTLS_SHIM_H
#define GRACE_CGNUTLS_SHIM_H
/*
 * GnuTLS, the TLS library libmicrohttpd is built with on Debian: random bytes and digests for
 * bearer tokens, and the peer certificate of a mutual-TLS connection; gracectl's TLS client.
 */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>

/* gnutls_free is a macro over a function pointer; Swift calls this instead. */
static inline void grace_gnutls_free(void *pointer) { gnutls_free(pointer); }

#endif
