//! The only place in the crate with ioctls, raw socket options and `unsafe`.
#![allow(unsafe_code)]
