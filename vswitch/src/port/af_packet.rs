//! AF_PACKET ports.
