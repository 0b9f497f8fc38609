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
#include <microhttpd.h>

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
    /* Bind address; MHD reads it only during start. */
    const struct sockaddr_in *address;
    unsigned int thread_pool_size;
    unsigned int connection_timeout_seconds;
    unsigned int connection_limit; /* 0 keeps MHD's default */
    MHD_AccessHandlerCallback access_handler;
    void *access_cls;
    GraceURILogCallback uri_log;
    void *uri_log_cls;
    MHD_RequestCompletedCallback completed;
    void *completed_cls;
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
 * Starts a daemon with MHD's internal thread pool over epoll and suspend/resume enabled.
 * Options travel as an MHD_OptionItem array through MHD_OPTION_ARRAY; two-pointer options carry
 * the function in `value` and the closure in `ptr_value`, as MHD documents.
 */
static inline struct MHD_Daemon *grace_mhd_start(const struct GraceDaemonConfig *config) {
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem options[10];
    unsigned int count = 0;
    /* The logger goes first, or MHD reports problems with the earlier options on stderr. */
    if (config->log_sink != NULL) {
        flags |= MHD_USE_ERROR_LOG;
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)&grace_mhd_log_trampoline, config->log_sink};
    }
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_SOCK_ADDR, 0, (void *)config->address};
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)config->thread_pool_size, NULL};
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)config->connection_timeout_seconds, NULL};
    if (config->connection_limit > 0) {
        options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_CONNECTION_LIMIT, (intptr_t)config->connection_limit, NULL};
    }
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)config->uri_log, config->uri_log_cls};
    options[count++] = (struct MHD_OptionItem){
        MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)config->completed, config->completed_cls};
    options[count++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    uint16_t port = ntohs(config->address->sin_port);
    return MHD_start_daemon(
        flags, port, NULL, NULL, config->access_handler, config->access_cls,
        MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

/* The port actually bound (useful with port 0); 0 if MHD cannot tell. */
static inline uint16_t grace_mhd_bound_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
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

/* MHD copies the bytes, so Swift's buffer need not outlive the call. */
static inline struct MHD_Response *grace_mhd_response_copying(size_t size, const void *bytes) {
    return MHD_create_response_from_buffer(size, (void *)bytes, MHD_RESPMEM_MUST_COPY);
}

static inline bool grace_mhd_add_header(
    struct MHD_Response *response, const char *name, const char *value) {
    return MHD_add_response_header(response, name, value) == MHD_YES;
}

static inline bool grace_mhd_queue(
    struct MHD_Connection *connection, unsigned int status, struct MHD_Response *response) {
    return MHD_queue_response(connection, status, response) == MHD_YES;
}

static inline enum MHD_Result grace_mhd_yes(void) { return MHD_YES; }
static inline enum MHD_Result grace_mhd_no(void) { return MHD_NO; }

#endif
