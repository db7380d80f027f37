// libcurl for Swift: the real header plus typed wrappers for what Swift cannot call.
// `curl_easy_setopt` and `curl_easy_getinfo` are variadic; each wrapper fixes one argument type.
// `static inline`, so they are emitted into the calling Swift module: no C target needed.
#ifndef CAUTOUPDATE_CURL_SHIM_H
#define CAUTOUPDATE_CURL_SHIM_H

#include <curl/curl.h>

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

#endif
