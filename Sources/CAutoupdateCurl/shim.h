// libcurl for Swift: the real header plus typed wrappers for what Swift cannot call.
// `curl_easy_setopt` and `curl_easy_getinfo` are variadic; each wrapper fixes one argument type.
// `static inline`, so they are emitted into the calling Swift module: no C target needed.
#ifndef CAUTOUPDATE_CURL_SHIM_H
#define CAUTOUPDATE_CURL_SHIM_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>

typedef size_t (*autoupdate_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);
typedef int (*autoupdate_curl_xferinfo_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow,
                                                 curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode autoupdate_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode autoupdate_curl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/// For string options (libcurl copies them) and for opaque context pointers.
static inline CURLcode autoupdate_curl_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode autoupdate_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

/// For CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION.
static inline CURLcode autoupdate_curl_setopt_data_callback(CURL *handle, CURLoption option,
                                                            autoupdate_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode autoupdate_curl_setopt_xferinfo_callback(CURL *handle,
                                                                autoupdate_curl_xferinfo_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}

static inline CURLcode autoupdate_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode autoupdate_curl_getinfo_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode autoupdate_curl_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

/// `curl_version_info(CURLVERSION_NOW)`: the macro names the struct version this header knows.
static inline const curl_version_info_data *autoupdate_curl_version_info(void) {
    return curl_version_info(CURLVERSION_NOW);
}

/// A connection cache (with TLS sessions and DNS answers) shared by every transfer of one
/// downloader, whatever thread runs it: libcurl calls the lock functions around each use, so that
/// a later request to the same server reuses a kept-alive connection.
typedef struct autoupdate_curl_share {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
} autoupdate_curl_share;

static inline void autoupdate_curl_share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *context) {
    (void)handle;
    (void)access;
    pthread_mutex_lock(&((autoupdate_curl_share *)context)->locks[data]);
}

static inline void autoupdate_curl_share_unlock(CURL *handle, curl_lock_data data, void *context) {
    (void)handle;
    pthread_mutex_unlock(&((autoupdate_curl_share *)context)->locks[data]);
}

/// `curl_share_init` with connections, TLS sessions and DNS shared; NULL when out of memory.
static inline autoupdate_curl_share *autoupdate_curl_share_new(void) {
    autoupdate_curl_share *shared = calloc(1, sizeof *shared);
    if (shared == NULL) return NULL;
    shared->share = curl_share_init();
    if (shared->share == NULL) {
        free(shared);
        return NULL;
    }
    for (int index = 0; index < CURL_LOCK_DATA_LAST; index++) pthread_mutex_init(&shared->locks[index], NULL);
    curl_share_setopt(shared->share, CURLSHOPT_LOCKFUNC, autoupdate_curl_share_lock);
    curl_share_setopt(shared->share, CURLSHOPT_UNLOCKFUNC, autoupdate_curl_share_unlock);
    curl_share_setopt(shared->share, CURLSHOPT_USERDATA, shared);
    curl_share_setopt(shared->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(shared->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(shared->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    return shared;
}

/// Frees the share once no transfer uses it (`curl_share_cleanup`).
static inline void autoupdate_curl_share_free(autoupdate_curl_share *shared) {
    curl_share_cleanup(shared->share);
    for (int index = 0; index < CURL_LOCK_DATA_LAST; index++) pthread_mutex_destroy(&shared->locks[index]);
    free(shared);
}

/// `CURLOPT_SHARE`.
static inline CURLcode autoupdate_curl_use_share(CURL *handle, autoupdate_curl_share *shared) {
    return curl_easy_setopt(handle, CURLOPT_SHARE, shared->share);
}

#endif
