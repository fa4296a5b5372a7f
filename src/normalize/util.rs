//! Shared helpers of the normalizers.
