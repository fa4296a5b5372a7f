//! The one integration-test binary (`autotests = false`): every end-to-end test is a module
//! here, so the cloud SDKs are linked once.

mod emulated;
mod util;
