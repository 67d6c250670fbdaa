//! kube-subnet-mgr: the Kubernetes API as flanneld's registry (node podCIDRs and annotations in
//! place of etcd leases). So far the annotation codec; the client and the
//! [`super::manager::SubnetManager`] over it come next.

pub mod annotations;
