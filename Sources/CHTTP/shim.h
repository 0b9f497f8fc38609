#ifndef GRACE_CHTTP_SHIM_H
#define GRACE_CHTTP_SHIM_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <microhttpd.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/*
 * Swift cannot call C variadic functions, and MHD's flag and option enums import awkwardly.
 * These small wrappers keep every variadic call, enum constant and function-pointer cast on the
 * C side, so the Swift code only passes plain values and non-capturing callbacks.
 */

/* MHD has no typedef for the URI logger, which is the only callback that sees the raw target. */
typedef void *(*GraceURILogCallback)(void *cls, const char *uri, struct MHD_Connection *connection);

/* MHD logs through printf-style varargs; Swift receives one formatted line instead. */
typedef void (*GraceLogLineCallback)(void *cls, const char *line);

/* Must outlive the daemon: MHD keeps the pointer and calls through it from its threads. */
struct GraceLogSink {
    GraceLogLineCallback callback;
    void *cls;
};

struct GraceDaemonConfig {
    /* A socket that is already bound and listening, on which MHD accepts (TLS); or -1: MHD
     * listens on nothing and graced hands it each connection with MHD_add_connection. */
    int listen_fd;
    unsigned int thread_pool_size;
    unsigned int connection_timeout_seconds;
    unsigned int connection_limit; /* 0 keeps MHD's default */
    unsigned int per_ip_connection_limit; /* 0: none (always 0 on a Unix socket) */
    size_t connection_memory_limit; /* 0 keeps MHD's default; bounds the request head */
    /* PEM text, NUL-terminated; all NULL for plain HTTP. `tls_trust` (client CAs) asks clients
     * for a certificate; MHD does not verify it, `grace_mhd_client_certificate` does. */
    const char *tls_key;
    const char *tls_cert;
    const char *tls_trust;
    MHD_AccessHandlerCallback access_handler;
    void *access_cls;
    GraceURILogCallback uri_log;
    void *uri_log_cls;
    MHD_RequestCompletedCallback completed;
    void *completed_cls;
    MHD_NotifyConnectionCallback notify_connection;
    void *notify_connection_cls;
    struct GraceLogSink *log_sink; /* NULL: MHD logs nothing */
};

static inline void grace_mhd_log_trampoline(void *cls, const char *format, va_list arguments) {
    struct GraceLogSink *sink = (struct GraceLogSink *)cls;
    char line[512];
    vsnprintf(line, sizeof line, format, arguments);
    size_t length = strlen(line);
    /* MHD's messages end with a newline; the Swift side wants bare lines. */
    while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) {
        line[--length] = '\0';
    }
    sink->callback(sink->cls, line);
}

/*
 * Starts a daemon with MHD's internal thread pool over epoll and suspend/resume enabled, either on
 * a listening socket the caller made (so a Unix socket gets its mode before anyone can connect) or
 * on none, for connections added with MHD_add_connection. Those need MHD_USE_ITC, so that a worker
 * blocked in epoll learns of them at once (MHD_ALLOW_SUSPEND_RESUME implies it; named anyway).
 * Options travel as an MHD_OptionItem array through MHD_OPTION_ARRAY; two-pointer options carry
 * the function in `value` and the closure in `ptr_value`, as MHD documents.
 */
static inline struct MHD_Daemon *grace_mhd_start(const struct GraceDaemonConfig *config) {
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem options[20];
    unsigned int count = 0;
    /* The logger goes first, or MHD reports problems with the earlier options on stderr. */
    if (config->log_sink != NULL) {
        flags |= MHD_USE_ERROR_LOG;
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)&grace_mhd_log_trampoline, config->log_sink};
    }
    if (config->listen_fd >= 0) {
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_LISTEN_SOCKET, (intptr_t)config->listen_fd, NULL};
    } else {
        flags |= MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    }
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)config->thread_pool_size, NULL};
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)config->connection_timeout_seconds, NULL};
    if (config->connection_limit > 0) {
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_CONNECTION_LIMIT, (intptr_t)config->connection_limit, NULL};
    }
    if (config->per_ip_connection_limit > 0) {
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)config->per_ip_connection_limit, NULL};
    }
    if (config->connection_memory_limit > 0) {
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)config->connection_memory_limit, NULL};
    }
    if (config->tls_key != NULL && config->tls_cert != NULL) {
        flags |= MHD_USE_TLS;
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)config->tls_key};
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)config->tls_cert};
        if (config->tls_trust != NULL) {
            options[count++] = (struct MHD_OptionItem){
                MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)config->tls_trust};
        }
    }
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)config->uri_log, config->uri_log_cls};
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)config->completed, config->completed_cls};
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)config->notify_connection,
        config->notify_connection_cls};
    options[count++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(
        flags, 0, NULL, NULL, config->access_handler, config->access_cls,
        MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

/* Whether this libmicrohttpd was built with TLS (Debian's is, with GnuTLS). */
static inline bool grace_mhd_has_tls(void) {
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

/* The connection's socket, or -1. */
static inline int grace_mhd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

/* What the connection-notify callback stored for this connection, or NULL. */
static inline void *grace_mhd_socket_context(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == NULL ? NULL : info->socket_context;
}

/* The client's address as text ("127.0.0.1", "::1"); "" for a Unix socket or when unknown. */
static inline void grace_mhd_client_address(struct MHD_Connection *connection, char *out, size_t size) {
    out[0] = '\0';
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || info->client_addr == NULL) return;
    const struct sockaddr *address = info->client_addr;
    if (address->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)address)->sin_addr, out, (socklen_t)size);
    } else if (address->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)address)->sin6_addr, out, (socklen_t)size);
    }
}

/* A socket address as text ("127.0.0.1", "::1"); "" for a Unix socket's or an unknown family. */
static inline void grace_sockaddr_text(const struct sockaddr_storage *address, char *out, size_t size) {
    out[0] = '\0';
    if (address->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)address)->sin_addr, out, (socklen_t)size);
    } else if (address->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)address)->sin6_addr, out, (socklen_t)size);
    }
}

/*
 * The client CAs and, optionally, their CRLs, as one GnuTLS trust list built at start. NULL when
 * the PEM holds no CA, or a CRL does not parse or is not signed by one of the CAs.
 */
static inline void *grace_client_trust_new(const char *ca_pem, const char *crl_pem) {
    gnutls_x509_trust_list_t list;
    if (gnutls_x509_trust_list_init(&list, 0) != GNUTLS_E_SUCCESS) return NULL;
    gnutls_datum_t ca = {(unsigned char *)ca_pem, (unsigned int)strlen(ca_pem)};
    int added = gnutls_x509_trust_list_add_trust_mem(list, &ca, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
    if (added <= 0) {
        gnutls_x509_trust_list_deinit(list, 1);
        return NULL;
    }
    if (crl_pem != NULL) {
        gnutls_datum_t crl = {(unsigned char *)crl_pem, (unsigned int)strlen(crl_pem)};
        int crls = gnutls_x509_trust_list_add_trust_mem(
            list, NULL, &crl, GNUTLS_X509_FMT_PEM, GNUTLS_TL_VERIFY_CRL | GNUTLS_TL_FAIL_ON_INVALID_CRL, 0);
        if (crls <= 0) {
            gnutls_x509_trust_list_deinit(list, 1);
            return NULL;
        }
    }
    return list;
}

static inline void grace_client_trust_free(void *trust) {
    if (trust != NULL) gnutls_x509_trust_list_deinit((gnutls_x509_trust_list_t)trust, 1);
}

/*
 * The peer certificate of a TLS connection, verified against `trust` (the client CAs and their
 * CRLs) for the purpose of TLS client authentication: a certificate whose Extended Key Usage names
 * other purposes only (a web server's, serverAuth) does not identify a caller, nor does a revoked
 * one. Returns 0 when there is no TLS session or no certificate, 1 with the subject DN in
 * `subject` when the chain verifies now, -1 when one was presented but does not verify.
 */
static inline int grace_mhd_client_certificate(
    struct MHD_Connection *connection, void *trust, char *subject, size_t size) {
    subject[0] = '\0';
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (info == NULL || info->tls_session == NULL) return 0;
    gnutls_session_t session = (gnutls_session_t)info->tls_session;
    if (gnutls_certificate_type_get(session) != GNUTLS_CRT_X509) return 0;
    unsigned int listed = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(session, &listed);
    if (chain == NULL || listed == 0) return 0;
    if (trust == NULL) return -1;
    enum { most = 16 };
    gnutls_x509_crt_t certificates[most];
    unsigned int count = 0;
    int result = -1;
    for (; count < listed && count < most; count++) {
        if (gnutls_x509_crt_init(&certificates[count]) != GNUTLS_E_SUCCESS) goto done;
        if (gnutls_x509_crt_import(certificates[count], &chain[count], GNUTLS_X509_FMT_DER) !=
            GNUTLS_E_SUCCESS) {
            count++;
            goto done;
        }
    }
    gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
    unsigned int status = 0;
    if (gnutls_x509_trust_list_verify_crt2(
            (gnutls_x509_trust_list_t)trust, certificates, count, &purpose, 1, 0, &status, NULL) !=
            GNUTLS_E_SUCCESS ||
        status != 0) {
        goto done;
    }
    size_t length = size;
    if (gnutls_x509_crt_get_dn(certificates[0], subject, &length) == GNUTLS_E_SUCCESS) result = 1;
done:
    for (unsigned int index = 0; index < count; index++) gnutls_x509_crt_deinit(certificates[index]);
    return result;
}

typedef enum MHD_Result (*GraceHeaderIterator)(
    void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size, const char *value,
    size_t value_size);

/* Request headers only (not cookies, query arguments or footers). */
static inline int grace_mhd_request_headers(
    struct MHD_Connection *connection, GraceHeaderIterator iterator, void *cls) {
    return MHD_get_connection_values_n(connection, MHD_HEADER_KIND, iterator, cls);
}

/* NULL when the header is absent. */
static inline const char *grace_mhd_request_header(
    struct MHD_Connection *connection, const char *name) {
    return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
}

/*
 * MHD sends `bytes` where they are, without a copy, and calls `release(owner)` once the response's
 * last reference is gone (after the last connection sending it is done). Not called when this
 * returns NULL: the caller then releases `owner` itself.
 */
static inline struct MHD_Response *grace_mhd_response_borrowing(
    size_t size, const void *bytes, void (*release)(void *), void *owner) {
    return MHD_create_response_from_buffer_with_free_callback_cls(size, (void *)bytes, release, owner);
}

/* MHD copies the bytes, so Swift's buffer need not outlive the call. */
static inline struct MHD_Response *grace_mhd_response_copying(size_t size, const void *bytes) {
    return MHD_create_response_from_buffer(size, (void *)bytes, MHD_RESPMEM_MUST_COPY);
}

/*
 * A response of unknown length (sent chunked) whose bytes MHD pulls from `reader`; `done` runs once
 * when MHD releases the response. MHD_SIZE_UNKNOWN and MHD_CONTENT_READER_END_OF_STREAM are cast
 * macros Swift does not import, hence these wrappers.
 */
static inline struct MHD_Response *grace_mhd_response_stream(
    size_t block_size, MHD_ContentReaderCallback reader, void *cls, MHD_ContentReaderFreeCallback done) {
    return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, block_size, reader, cls, done);
}

static inline ssize_t grace_mhd_end_of_stream(void) { return MHD_CONTENT_READER_END_OF_STREAM; }

static inline bool grace_mhd_add_header(
    struct MHD_Response *response, const char *name, const char *value) {
    return MHD_add_response_header(response, name, value) == MHD_YES;
}

static inline bool grace_mhd_queue(
    struct MHD_Connection *connection, unsigned int status, struct MHD_Response *response) {
    return MHD_queue_response(connection, status, response) == MHD_YES;
}

/*
 * The head gate's system calls. Swift's Glibc has neither accept4 nor eventfd, and glibc's
 * struct epoll_event is a packed struct around a union; these keep all three on the C side.
 */

/* accept4 with the new socket non-blocking and close-on-exec from the start. */
static inline int grace_accept(int listen_fd, struct sockaddr *address, socklen_t *length) {
    return accept4(listen_fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* An eventfd that can wake an epoll wait from another thread. */
static inline int grace_wake_fd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

static inline void grace_wake(int wake_fd) {
    uint64_t one = 1;
    ssize_t written = write(wake_fd, &one, sizeof one);
    (void)written; /* a full counter already wakes the waiter */
}

/* Watches `fd` for input and for the peer's hang-up; edge-triggered reports only new arrivals. */
static inline int grace_epoll_watch(int epoll_fd, int fd, bool edge_triggered) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = EPOLLIN | EPOLLRDHUP | (edge_triggered ? EPOLLET : 0);
    event.data.fd = fd;
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
}

static inline void grace_epoll_forget(int epoll_fd, int fd) {
    struct epoll_event unused;
    memset(&unused, 0, sizeof unused);
    (void)epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, &unused);
}

/* Like epoll_wait, with each ready descriptor and whether its peer hung up (or the socket failed)
 * written to two plain arrays of `capacity` (at most 64) entries. */
static inline int grace_epoll_wait(
    int epoll_fd, int *fds, bool *hung_up, int capacity, int timeout_ms) {
    struct epoll_event ready[64];
    if (capacity > 64) capacity = 64;
    int count = epoll_wait(epoll_fd, ready, capacity, timeout_ms);
    for (int i = 0; i < count; i++) {
        fds[i] = ready[i].data.fd;
        hung_up[i] = (ready[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    }
    return count;
}

static inline enum MHD_Result grace_mhd_yes(void) { return MHD_YES; }
static inline enum MHD_Result grace_mhd_no(void) { return MHD_NO; }

#endif
