//! A local OCI image layout directory (image-spec `image-layout.md`): the
//! embedded default store. Stays valid for other tools (skopeo can copy from it).
