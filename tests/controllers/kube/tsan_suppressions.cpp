// ThreadSanitizer suppressions for tests that run the cpprestsdk transport.
//
// Debian's libcpprest.so is not built with ThreadSanitizer, so TSan does not
// see the atomic reference-count decrements that run inside it. When the
// last reference to one of its objects is dropped inside the library on one
// thread while our (instrumented) code dropped another reference on a
// different thread, TSan reports the free as racing with our earlier,
// properly ordered, access. (The same holds for std::exception_ptr, whose
// reference count lives in the uninstrumented libstdc++.) Seen in eight places:
//   - the free of the cancellation-token callback cpprestsdk registers per
//     request (it holds a weak_ptr to the request context), also when our
//     cancel() invokes and releases the registration while the library,
//     failing the request on its network thread, deregisters it
//     (_CancellationTokenState::_DeregisterCallback inside libcpprest), and
//   - the free of that request context, both when a request is cancelled
//     while its completion runs on the network thread (timeouts, Cancel);
//   - the free of a response's body-complete task when the library completes
//     its task_completion_event while our content_ready() continuation runs;
//   - the free of an http_exception (its what() string) by the library, and
//   - the free of the exception object by libstdc++'s exception_ptr release,
//     after our thread, holding an exception_ptr to it, read its message;
//   - the free of the TLS verify callback cpprestsdk keeps per client, when
//     the last client reference goes while a timer handler inside the
//     library drops its weak reference;
//   - pplx's process-wide default scheduler, created on first use under the
//     library's own (uninstrumented) lock: two threads issuing their first
//     requests at once are reported as racing on it.
// All are reference-counted correctly. The suppressions name those library
// functions only: a race whose stacks do not pass through them (say, in the
// body buffer BodySink shares with the network thread) is still reported.
// Every binary that runs the real transport under TSan links this file
// (transport_test, emulator_conformance_test, the tests of controllers/ and
// operator/, and the kubefold binary itself in a TSan build).
extern "C" __attribute__((used, visibility("default"))) const char* __tsan_default_suppressions() {
  return "race:pplx::details::_CancellationTokenCallback\n"
         "race:pplx::details::_CancellationTokenState::_DeregisterCallback\n"
         "race:web::http::client::details::asio_context::~asio_context\n"
         "race:pplx::task_completion_event\n"
         "race:web::http::http_exception::~http_exception\n"
         "race:std::__exception_ptr::exception_ptr::_M_release\n"
         "race:boost::asio::ssl::detail::verify_callback\n"
         "race:pplx::_pplx_g_sched_t::get_scheduler\n";
}
