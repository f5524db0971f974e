//! Users (Updraft's own).
