/* backstate's QuickJS-NG WASI reactor.
 *
 * The guest exposes a handful of exports to the Python driver (runtime/sandbox/vm.py):
 *   sb_init(max_stack)                 create the one runtime + context of this instance
 *   sb_eval(code, len, name, flags)    evaluate a script or module, or compile a named module
 *   sb_call(arg, len)                  call globalThis.__bs_entry(arg) -> string (the hot path)
 *   sb_run_jobs()                      drain the promise job queue
 *   sb_last_error()                    the pending exception, as a string with its stack
 * and imports one function, env.host_call, exposed to JS as __host_call(string) -> string, for
 * synchronous requests to the host (crypto digests, random bytes).
 *
 * Results are returned as malloc'ed UTF-8 buffers; their status and length go into a scratch
 * area the host allocated once ([status, length, failed allocations] as three i32). status:
 * 0 ok, 1 JS exception (the buffer holds its message and stack), 2 conversion failed (out of
 * memory).
 * There is no qjs-libc: no std/os modules, no files, no environment. */
#include <stdlib.h>
#include <string.h>
#include "cutils.h"
#include "quickjs.h"

__attribute__((import_module("env"), import_name("host_call")))
extern char *host_call(const char *req, int req_len, int *resp_len);

static JSRuntime *rt;
static JSContext *ctx;
static int *scratch;  /* [status, out_len, failed allocations], owned by the host */

/* QuickJS's allocator, counting the allocations the store's memory limit refused in
 * scratch[2]. An out-of-memory error can vanish inside JavaScript (caught, or rejecting a
 * promise nobody awaits, as in a runaway microtask chain); the host reads this count instead
 * and ends the step as it does for the time limit. */
static void note(const void *p, size_t size) { if (!p && size && scratch) scratch[2]++; }
static void *sb_calloc(void *o, size_t n, size_t size) { void *p = calloc(n, size); note(p, n * size); return p; }
static void *sb_malloc(void *o, size_t size) { void *p = malloc(size); note(p, size); return p; }
static void sb_free(void *o, void *ptr) { free(ptr); }
static void *sb_realloc(void *o, void *ptr, size_t size) { void *p = realloc(ptr, size); note(p, size); return p; }
static const JSMallocFunctions counting_malloc = {
    sb_calloc, sb_malloc, sb_free, sb_realloc, js__malloc_usable_size
};

static JSValue js_host_call(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s) return JS_EXCEPTION;
    int rlen = 0;
    char *r = host_call(s, (int)len, &rlen);
    JS_FreeCString(c, s);
    if (!r) return JS_ThrowInternalError(c, "host call failed");
    JSValue v = JS_NewStringLen(c, r, rlen);
    free(r);
    return v;
}

static char *to_buffer(JSValue v, int status) {
    size_t n = 0;
    const char *s = JS_ToCStringLen(ctx, &n, v);
    if (!s) { JS_FreeValue(ctx, JS_GetException(ctx)); scratch[0] = 2; scratch[1] = 0; return NULL; }
    char *r = malloc(n ? n : 1);
    if (r) memcpy(r, s, n);
    JS_FreeCString(ctx, s);
    scratch[0] = r ? status : 2;
    scratch[1] = (int)n;
    return r;
}

/* The pending exception as "message\nstack". */
static char *exception_buffer(void) {
    JSValue e = JS_GetException(ctx);
    JSValue out = e;
    if (JS_IsError(e)) {
        JSValue stack = JS_GetPropertyStr(ctx, e, "stack");
        const char *msg = JS_ToCString(ctx, e);
        const char *st = JS_IsString(stack) ? JS_ToCString(ctx, stack) : NULL;
        out = JS_NewString(ctx, "");
        if (msg) {
            size_t ml = strlen(msg), sl = st ? strlen(st) : 0;
            char *buf = malloc(ml + sl + 2);
            if (buf) {
                memcpy(buf, msg, ml); buf[ml] = '\n';
                if (st) memcpy(buf + ml + 1, st, sl);
                JS_FreeValue(ctx, out);
                out = JS_NewStringLen(ctx, buf, ml + 1 + sl);
                free(buf);
            }
            JS_FreeCString(ctx, msg);
        }
        if (st) JS_FreeCString(ctx, st);
        JS_FreeValue(ctx, stack);
        JS_FreeValue(ctx, e);
    }
    char *r = to_buffer(out, 1);
    JS_FreeValue(ctx, out);
    return r;
}

static char *finish(JSValue v) {
    if (JS_IsException(v)) return exception_buffer();
    char *r = to_buffer(v, 0);
    JS_FreeValue(ctx, v);
    return r;
}

__attribute__((export_name("sb_init")))
int sb_init(int max_stack, int *scratch_area) {
    scratch = scratch_area;
    rt = JS_NewRuntime2(&counting_malloc, NULL);
    if (!rt) return -1;
    JS_SetMaxStackSize(rt, (size_t)max_stack);
    ctx = JS_NewContext(rt);
    if (!ctx) return -2;
    JSValue g = JS_GetGlobalObject(ctx);
    JS_SetPropertyStr(ctx, g, "__host_call", JS_NewCFunction(ctx, js_host_call, "__host_call", 1));
    JS_FreeValue(ctx, g);
    return 0;
}

/* Evaluating a module yields a promise (modules may use top-level await), and an exception
 * thrown by the module's body rejects it instead of being thrown: run the jobs and turn a
 * rejection back into an exception, so a broken bundle is reported where it is loaded. */
static JSValue settle_module(JSValue promise) {
    JSContext *c;
    while (JS_ExecutePendingJob(rt, &c) > 0) {}
    if (JS_PromiseState(ctx, promise) != JS_PROMISE_REJECTED) return promise;
    JSValue reason = JS_PromiseResult(ctx, promise);
    JS_FreeValue(ctx, promise);
    return JS_Throw(ctx, reason);
}

/* flags: 0 script, 1 module (evaluated), 1|32 module compiled only (registered by name) */
__attribute__((export_name("sb_eval")))
char *sb_eval(const char *code, int len, const char *filename, int flags) {
    JS_UpdateStackTop(rt);
    JSValue v = JS_Eval(ctx, code, (size_t)len, filename, flags);
    if ((flags & JS_EVAL_FLAG_COMPILE_ONLY) && !JS_IsException(v)) { JS_FreeValue(ctx, v); v = JS_UNDEFINED; }
    else if ((flags & JS_EVAL_TYPE_MODULE) && !JS_IsException(v)) v = settle_module(v);
    return finish(v);
}

__attribute__((export_name("sb_call")))
char *sb_call(const char *arg, int len) {
    JS_UpdateStackTop(rt);
    JSValue g = JS_GetGlobalObject(ctx);
    JSValue fn = JS_GetPropertyStr(ctx, g, "__bs_entry");
    JS_FreeValue(ctx, g);
    if (!JS_IsFunction(ctx, fn)) {
        JS_FreeValue(ctx, fn);
        return finish(JS_ThrowTypeError(ctx, "__bs_entry is not installed"));
    }
    JSValue a = JS_NewStringLen(ctx, arg, (size_t)len);
    if (JS_IsException(a)) { JS_FreeValue(ctx, fn); return finish(a); }
    JSValue r = JS_Call(ctx, fn, JS_UNDEFINED, 1, &a);
    JS_FreeValue(ctx, a);
    JS_FreeValue(ctx, fn);
    return finish(r);
}

/* Returns the number of jobs run, or -1 with the exception left pending (see sb_last_error). */
__attribute__((export_name("sb_run_jobs")))
int sb_run_jobs(void) {
    JSContext *c;
    int n = 0, r;
    JS_UpdateStackTop(rt);
    while ((r = JS_ExecutePendingJob(rt, &c)) > 0) n++;
    return r < 0 ? -1 : n;
}

__attribute__((export_name("sb_last_error")))
char *sb_last_error(void) { return exception_buffer(); }

/* Bytes QuickJS believes it has allocated (for the benchmark's memory-per-VM figure). */
__attribute__((export_name("sb_memory_used")))
int sb_memory_used(void) {
    JSMemoryUsage u;
    JS_ComputeMemoryUsage(rt, &u);
    return (int)u.memory_used_size;
}

/* Collect garbage, then let the heap grow by `headroom` bytes before the next collection.
 * Called before a snapshot: VMs cloned from it live for one event, and a collection in every
 * one of them (a snapshot taken just under the threshold) would cost more than the event. */
__attribute__((export_name("sb_gc")))
void sb_gc(int headroom) {
    JS_RunGC(rt);
    JSMemoryUsage u;
    JS_ComputeMemoryUsage(rt, &u);
    JS_SetGCThreshold(rt, (size_t)u.malloc_size + (size_t)headroom);
}
