"""The Smart Metering Key Infrastructure, host side: keystores (files or PKCS#11), the certificate
profile, split authority over the root, and the CAs (root, organisation, device CAs with quotas, and
the infrastructure CA for DCC-facing keys). See authority.py for the layout of an SMKI's folder."""
