//! SMKI-profile test PKI (work in progress: see issue 2).
